"""Where a run's env slots live: on this host (``local``) or in env shards on Ray (``ray``).

The loop, the ledger, the policy and the results are the same for both:
a backend only decides which :class:`~arena.env.VectorEnv` the loop
steps. ``local`` is the env family's own vector env (in process, or its
worker processes); ``ray`` is :class:`~arena.backends.ray_env.RayVectorEnv`,
``workers`` actors of ``envs_per_worker`` slots each, built by the family
inside each actor. The backend is not part of a run's identity: the seed
decides every episode, so a run started on one host resumes on Ray and back.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any

import attrs

from arena.env import VectorEnv
from arena.errors import ConfigError
from arena.plugins import Plugins

log = logging.getLogger(__name__)

__all__ = ["BackendConfig", "BACKENDS", "DEFAULT_RESOURCES", "parse_resources", "make_vector_env", "backend_stages"]

BACKENDS = ("local", "ray")
#: what one Ray shard asks for unless --worker-resources says otherwise (keys given there replace these)
DEFAULT_RESOURCES: dict[str, float] = {"CPU": 1.0}


def parse_resources(text: str | Mapping[str, Any] | None) -> dict[str, float]:
    """``'{"sim": 1, "GPU": 0.5}'`` -> the resources one shard asks for, merged over the default."""
    if text is None:
        return dict(DEFAULT_RESOURCES)
    if isinstance(text, str):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"--worker-resources: expected a JSON object such as '{{\"sim\": 1}}', got {text!r} ({exc.msg})"
            ) from None
    else:
        value = text
    if not isinstance(value, Mapping):
        raise ConfigError(f"--worker-resources: expected a JSON object of resource amounts, got {value!r}")
    out = dict(DEFAULT_RESOURCES)
    for key, amount in value.items():
        ok = isinstance(amount, (int, float)) and not isinstance(amount, bool) and math.isfinite(amount)
        if not isinstance(key, str) or not key or not ok or amount < 0:
            raise ConfigError(
                f"--worker-resources: expected a non-negative number for resource {key!r}, got {amount!r}"
            )
        out[key] = float(amount)
    return out


@attrs.frozen
class BackendConfig:
    """Where the slots run. ``workers``/``envs_per_worker``/``resources``/``address`` apply to ``ray``."""

    name: str = "local"
    address: str | None = None
    workers: int | None = None
    envs_per_worker: int | None = None
    #: a JSON object or a mapping of resource amounts (see :func:`parse_resources`)
    resources: str | Mapping[str, float] | None = None
    placement_timeout_s: float = 60.0
    shard_timeout_s: float = 300.0

    def validate(self) -> None:
        if self.name not in BACKENDS:
            raise ConfigError(f"--backend: expected one of {', '.join(BACKENDS)}, got {self.name!r}")
        if self.name == "local":
            given = [
                flag
                for flag, value in (
                    ("--ray-address", self.address),
                    ("--workers", self.workers),
                    ("--envs-per-worker", self.envs_per_worker),
                    ("--worker-resources", self.resources),
                )
                if value is not None
            ]
            if given:
                raise ConfigError(f"{', '.join(given)}: only with --backend ray")
            return
        for flag, value in (("--workers", self.workers), ("--envs-per-worker", self.envs_per_worker)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{flag}: expected an integer >= 1, got {value!r}")
        for flag, value in (
            ("--placement-timeout", self.placement_timeout_s),
            ("--shard-timeout", self.shard_timeout_s),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"{flag}: expected a number of seconds > 0, got {value!r}")
        parse_resources(self.resources)

    def layout(self, num_envs: int | None) -> tuple[int, int, int]:
        """``(num_envs, workers, envs_per_worker)``; local runs are one worker of all slots."""
        if self.name == "local":
            n = num_envs or 1
            return n, 1, n
        per = self.envs_per_worker or 1
        if self.workers is not None:
            n = self.workers * per
            if num_envs is not None and num_envs != n:
                raise ConfigError(
                    f"--num-envs {num_envs}: with --backend ray the slots are --workers x --envs-per-worker "
                    f"= {self.workers} x {per} = {n}; give --workers alone or a matching --num-envs"
                )
            return n, self.workers, per
        n = num_envs or per
        if n % per:
            raise ConfigError(f"--num-envs {n}: expected a multiple of --envs-per-worker {per}")
        return n, n // per, per

    def to_dict(self, num_envs: int | None = None) -> dict[str, Any]:
        """The backend as config.json records it (not part of the run's identity)."""
        if self.name == "local":
            return {"name": "local"}
        _, workers, per = self.layout(num_envs)
        return {
            "name": "ray",
            "address": self.address,
            "workers": workers,
            "envs_per_worker": per,
            "resources": parse_resources(self.resources),
            "placement_timeout_s": self.placement_timeout_s,
            "shard_timeout_s": self.shard_timeout_s,
        }


def backend_stages(requested: int | None, suggested: int, backend: BackendConfig, num_envs: int) -> int:
    """Pipeline stages for ``backend``: on Ray a group is made of whole shards."""
    if backend.name == "local":
        return requested if requested is not None else max(1, min(suggested, num_envs))
    _, workers, _ = backend.layout(num_envs)
    if requested is None:
        stages = max(1, min(suggested, workers))
        while workers % stages:
            stages -= 1
        return stages
    if workers % requested:
        raise ConfigError(
            f"--stages {requested}: with --backend ray each stage is a group of whole shards; "
            f"expected a divisor of --workers {workers}"
        )
    return requested


def make_vector_env(
    plugins: Plugins, env_id: str, config_values: Any, num_envs: int, backend: BackendConfig
) -> tuple[VectorEnv, Any]:
    """The vector env of the run on ``backend``, and the env config instance."""
    from arena.run import build_config, make_env, resolve_env

    if backend.name == "local":
        return make_env(plugins, env_id, config_values, num_envs)
    entry, _ = resolve_env(plugins, env_id)  # an unknown env id fails before Ray starts
    config = build_config(entry.config, config_values)
    from arena.backends.ray_env import RayVectorEnv
    from arena.backends.ray_runtime import RayRuntime

    n, workers, per = backend.layout(num_envs)
    resources = parse_resources(backend.resources)
    runtime = RayRuntime(backend.address, num_cpus=math.ceil(workers * resources.get("CPU", 0.0)))
    runtime.__enter__()
    try:
        env = RayVectorEnv(
            runtime.ray,
            env_id,
            config,
            workers,
            per,
            resources,
            placement_timeout_s=backend.placement_timeout_s,
            shard_timeout_s=backend.shard_timeout_s,
            runtime=runtime,
        )
    except BaseException:
        runtime.__exit__(None, None, None)
        raise
    return env, config
