"""The ``openpi`` policy family: remote openpi policy servers behind arena's Policy interface.

The kit's :class:`~arena.remote.policy.RemotePolicy` with openpi's wire: openpi has no batch
form, so the envs that need a chunk at the same moment are sent as concurrent requests over
the kit's replica pool (one connection per replica by default: a stock server infers one at
a time). Keys are translated by a mapping (translator ``openpi:<embodiment>`` or ``--mapping``).

Preflight, once, from ``describe()`` or the first ``infer()``: ``GET /healthz`` on every
replica (an unreachable one is a problem naming host:port), open the pool, read the
metadata frame (the reference server states its key layout there and the mapping is
checked against it), then one probe inference with a zero observation of the mapped keys
and shapes. The probe is how the chunk length is learnt: openpi's metadata does not state
it, and a mapping cannot know it (pi0_libero returns 50 steps, pi05_libero 10, for the same
keys). A stated length (server metadata or the mapping's ``action_horizon``) is checked
against the probe's reply, and every later reply is checked against the length found.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from arena.contract import EnvSpec
from arena.errors import PolicyError
from arena.remote.fanout import ReplicaPool
from arena.remote.policy import RemotePolicy, remote_fields
from arena.validators import at_least
from arena_openpi.layout import ServedLayout
from arena_openpi.mapping import PACKAGED_MAPPINGS, OpenpiMapping, packaged_mapping
from arena_openpi.translator import Translator
from arena_openpi.wire.client import DEFAULT_PORT, OpenpiClient, healthz
from arena_openpi.wire.errors import OpenpiConnectionError, OpenpiServerError

__all__ = ["API_KEY_ENV", "OpenpiConfig", "OpenpiPolicy"]

log = logging.getLogger(__name__)

API_KEY_ENV = "OPENPI_API_KEY"
"""Environment variable read for the token when --token is not given (keeps it out of `ps`)."""


_F = remote_fields(
    "openpi",
    DEFAULT_PORT,
    API_KEY_ENV,
    tuple(PACKAGED_MAPPINGS),
    timeout_s=300.0,
    token_help="sent as 'Authorization: Api-Key TOKEN'",
)


@attrs.define
class OpenpiConfig:
    """Client flags of ``--policy openpi``."""

    host: str = _F.host
    port: int = _F.port
    token: str | None = _F.token
    timeout: float = _F.timeout
    mapping: str | None = _F.mapping
    connections_per_host: int = attrs.field(
        default=1,
        validator=at_least(1),
        metadata={
            "identity": False,
            "help": "connections (= requests in flight) per replica; a stock server infers one at a time",
        },
    )
    replan_steps: int | None = attrs.field(
        default=None,
        validator=at_least(1),
        metadata={"help": "actions executed per chunk before asking again (default: the mapping's replan_steps)"},
    )
    probe: bool = attrs.field(
        default=True,
        metadata={
            "identity": False,
            "help": "at preflight send one zero observation to learn the chunk length and check the reply",
        },
    )
    reconnect_deadline: float = attrs.field(
        default=30.0,
        validator=at_least(0, strict=True),
        metadata={
            "identity": False,
            "help": "seconds to keep reconnecting to a replica that went away (e.g. restarted)",
        },
    )


class OpenpiPolicy(RemotePolicy):
    """Remote openpi policy servers (WebSocket + msgpack-numpy), keys translated by a mapping."""

    Config = OpenpiConfig
    protocol = "openpi"
    default_port = DEFAULT_PORT
    token_env = API_KEY_ENV
    mapping_class = OpenpiMapping
    translator_class = Translator
    packaged_mappings = {n: packaged_mapping(n) for n in PACKAGED_MAPPINGS}

    def __init__(self, config: OpenpiConfig, env_spec: EnvSpec, num_envs: int) -> None:
        super().__init__(config, env_spec, num_envs)
        self.layout: ServedLayout | None = None

    # ------------------------------------------------------------------ the wire

    def connect(self, host: str, port: int) -> OpenpiClient:
        return OpenpiClient(
            host,
            port,
            api_key=self.token,
            timeout_s=self.config.timeout,
            open_timeout_s=min(10.0, self.config.timeout),
            reconnect_deadline_s=self.config.reconnect_deadline,
        )

    def request(self, connection: OpenpiClient, native: Mapping[str, Any]) -> dict[str, Any]:
        return connection.infer(native)

    def reply_actions(self, reply: Mapping[str, Any]) -> np.ndarray:
        return self.translator.reply_actions(reply)

    # ------------------------------------------------------------------ preflight

    def check_reachable(self) -> list[str]:
        """``GET /healthz`` on every replica: the server's own health answer, not just an open port."""
        problems = []
        for host, port in self.replicas:
            health = healthz(host, port, timeout_s=min(5.0, self.config.timeout))
            if not health:
                reason = health.error or f"GET /healthz answered HTTP {health.status} {health.body!r}"
                problems.append(
                    f"openpi server at {health.endpoint} is not reachable ({reason}); start one "
                    f"(e.g. `arena-openpi serve --policy expert --env ENV --port {port}`) or fix --host/--port"
                )
        return problems

    def open_pool(self) -> ReplicaPool[OpenpiClient]:
        return ReplicaPool(
            self.replicas,
            self.connect,
            per_replica=self.config.connections_per_host,
            failover=len(self.replicas) > 1,
            name="openpi pool",
            error=OpenpiConnectionError,
        )

    def connected(self, mapping: OpenpiMapping, problems: list[str]) -> None:
        """The reference server states its key layout in the metadata frame: check the mapping against it."""
        try:
            self.layout = ServedLayout.from_metadata(self.pool.connections[0].metadata)
        except ValueError as exc:
            problems.append(f"server metadata: {exc}")
        if self.layout is not None:
            self._info["served"] = f"arena policy {self.layout.policy} on {self.layout.env} (layout from metadata)"
            problems.extend(self.translator.restrict(self.layout))

    def stated_horizons(self, mapping: OpenpiMapping) -> list[tuple[int, str]]:
        stated = ((self.layout.action_horizon if self.layout else None, "server metadata"),)
        stated += ((mapping.action_horizon, "mapping action_horizon"),)
        return [(n, src) for n, src in stated if n is not None]

    def probe_problem(self, exc: Exception) -> str:
        if isinstance(exc, OpenpiServerError):
            return (
                f"the server failed on the probe observation (keys {sorted(self.translator.keys)}); "
                f"its traceback ends: {_last_line(exc.server_traceback)}"
            )
        return super().probe_problem(exc)

    def probe(self, mapping: OpenpiMapping, problems: list[str]) -> None:
        """The chunk length (probe, metadata or mapping), then how much of it runs (replan steps)."""
        super().probe(mapping, problems)
        horizon = self.action_horizon
        if "action horizon" not in self._info:
            return
        if self.config.replan_steps is not None:
            if self.config.replan_steps > horizon:
                problems.append(f"--replan-steps {self.config.replan_steps} exceeds the chunk length {horizon}")
            self.execution_horizon = self.config.replan_steps
            self._info["execution horizon"] = f"{self.config.replan_steps} (--replan-steps)"
        elif mapping.replan_steps is not None:
            self.execution_horizon = min(mapping.replan_steps, horizon)
            clamp = f", chunk of {horizon} executed whole" if mapping.replan_steps > horizon else ""
            self._info["execution horizon"] = (
                f"{self.execution_horizon} (mapping replan_steps {mapping.replan_steps}{clamp})"
            )

    # ------------------------------------------------------------------ inference

    def decode(self, reply: Mapping[str, Any]) -> np.ndarray:
        return self.translator.decode([reply], self.action_horizon)[0]

    def request_error(self, exc: BaseException, env_ids: np.ndarray) -> BaseException:
        if isinstance(exc, OpenpiServerError):
            err = PolicyError(
                f"openpi server {exc.endpoint} failed during inference for env(s) {env_ids.tolist()}; "
                f"server traceback:\n{exc.server_traceback}"
            )
            err.__cause__ = exc
            return err
        return super().request_error(exc, env_ids)

    def reset(self, env_ids: Sequence[int], seeds: Sequence[int] | None = None) -> None:
        """Nothing to reset: openpi requests are independent (the protocol has no reset)."""


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(empty)"
