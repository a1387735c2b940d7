"""``RemotePolicy``: the template of a family that sends one observation per request.

A family writes its wire format (a codec and a per-replica connection) and three hooks;
the template does the rest: replica list and pool, the mapping (``--mapping NAME|PATH``
or the one registered for the env's embodiment), a translator resolved by name, one cached
preflight whose misfits are ``describe().problems`` (what ``arena check`` prints),
``submit`` fanned out over replicas, ``infer``, ``close``. The config fields every such
family has come from :func:`remote_fields`, with the right identity and secret metadata.

Hooks::

    connect(host, port) -> connection          # one per pool slot; closed with .close()
    request(connection, native_obs) -> reply   # one request; raise RemoteError subclasses
    reply_actions(reply) -> np.ndarray         # (H, width) or (width,) in the reply's columns

A thin request/response family (see docs/writing-a-protocol-family.md) is these three
plus its codec and its mappings.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any, ClassVar

import attrs
import numpy as np

from arena.contract import ActionChunk, EnvSpec, Observation
from arena.errors import ArenaError, PolicyError
from arena.futures import gather
from arena.policy import Policy, PolicyDescription
from arena.remote.errors import RemoteConnectionError, RemoteError
from arena.remote.fanout import ReplicaPool
from arena.remote.hosts import HostPort, host_label, parse_hosts
from arena.remote.keymap import KeyMapping, mapping_for
from arena.remote.translate import KeyTranslator
from arena.validators import accepted_by, at_least, in_range

__all__ = ["RemotePolicy", "remote_fields"]

log = logging.getLogger(__name__)


def remote_fields(
    protocol: str,
    default_port: int,
    token_env: str,
    packaged: tuple[str, ...] = (),
    *,
    timeout_s: float = 60.0,
    spread: str = "requests are spread over them",
    token_help: str = "sent as 'Authorization: Bearer TOKEN' (an arena extension)",
    schemes: tuple[str, ...] = (),
) -> SimpleNamespace:
    """The config fields every remote family has, one vocabulary across families.

    ``host`` (replicas ``a:P,b:P``), ``port``, ``token`` (secret, default ``$TOKEN_ENV``),
    ``timeout``, ``mapping`` (``NAME|PATH``), ``connections_per_host``, with the right identity
    and secret metadata; server-side names stay on the wire. Use them in an attrs class::

        F = remote_fields("openvla", 8000, "OPENVLA_TOKEN")

        @attrs.define
        class OpenvlaConfig:
            host: str = F.host
            port: int = F.port
            ...
    """
    names = f" ({', '.join(packaged)})" if packaged else ""
    return SimpleNamespace(
        host=attrs.field(
            default="127.0.0.1",
            validator=accepted_by(lambda v: parse_hosts(v, default_port, schemes)),
            metadata={
                "identity": False,
                "help": f"{protocol} server: HOST, HOST:PORT, or replicas a:{default_port},b:{default_port} ({spread})",
            },
        ),
        port=attrs.field(
            default=default_port,
            validator=in_range(1, 65535),
            metadata={"identity": False, "help": "port of hosts given without one"},
        ),
        token=attrs.field(
            default=None,
            repr=False,
            metadata={"identity": False, "secret": True, "help": f"{token_help} (default: ${token_env})"},
        ),
        timeout=attrs.field(
            default=timeout_s,
            validator=at_least(0, strict=True),
            metadata={"identity": False, "help": "seconds to wait for one reply"},
        ),
        mapping=attrs.field(
            default=None,
            metadata={
                "help": f"mapping: a TOML file or a packaged one{names}; default: the one registered for the "
                f"env's embodiment, {protocol}:EMBODIMENT"
            },
        ),
        connections_per_host=attrs.field(
            default=None,
            validator=attrs.validators.optional(at_least(1)),
            metadata={
                "identity": False,
                "help": "requests in flight per replica (default: enough for every env slot at once)",
            },
        ),
    )


class RemotePolicy(Policy):
    """One observation per request over a pool of replicas; subclasses implement the hooks."""

    protocol: ClassVar[str] = "remote"
    default_port: ClassVar[int] = 8000
    token_env: ClassVar[str] = ""
    mapping_class: ClassVar[type[KeyMapping]] = KeyMapping
    translator_class: ClassVar[type[KeyTranslator]] = KeyTranslator
    #: packaged mapping name -> resource (``--mapping NAME``)
    packaged_mappings: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, config: Any, env_spec: EnvSpec, num_envs: int) -> None:
        super().__init__(config, env_spec, num_envs)
        self.replicas: list[HostPort] = parse_hosts(config.host, config.port)
        self.token: str | None = config.token or (os.environ.get(self.token_env) if self.token_env else None) or None
        self.pool: ReplicaPool | None = None
        self.translator: KeyTranslator | None = None
        self.action_horizon = 1
        self._problems: list[str] | None = None
        self._info: dict[str, str] = {}

    # -- hooks -----------------------------------------------------------------------------------
    def connect(self, host: str, port: int) -> Any:
        """A connection to one replica (one per pool slot)."""
        raise NotImplementedError

    def request(self, connection: Any, native: Mapping[str, Any]) -> Any:
        """Send one native observation, return the decoded reply."""
        raise NotImplementedError

    def reply_actions(self, reply: Any) -> np.ndarray:
        """The reply's actions, (H, width) or (width,), in the reply's column order."""
        raise NotImplementedError

    def extra_info(self) -> dict[str, str]:
        """More ``arena check`` lines (e.g. ``unnorm_key``)."""
        return {}

    # -- preflight -------------------------------------------------------------------------------
    def mapping(self) -> KeyMapping:
        return mapping_for(self.mapping_class, self.config.mapping, self.packaged_mappings, self.env_spec)

    def preflight(self) -> list[str]:
        """Mapping, pool, one probe request: once; every misfit becomes a problem."""
        if self._problems is not None:
            return self._problems
        problems: list[str] = []
        self._problems = problems
        endpoints = ",".join(host_label(h, p) for h, p in self.replicas)
        self._info = {"server": endpoints}
        try:
            mapping = self.mapping()
        except ArenaError as exc:
            problems.append(str(exc))
            return problems
        self._info["mapping"] = f"{mapping.name or '-'} ({mapping.source})"
        self.translator = self.translator_class(mapping, self.env_spec)
        problems.extend(self.translator.problems)
        if problems:
            return problems
        per = self.config.connections_per_host or max(1, math.ceil(self.num_envs / len(self.replicas)))
        unreachable = (
            f"{self.protocol} server at {endpoints} is not reachable ({{}}); start one "
            f"(e.g. `arena-{self.protocol} serve --policy expert --env ENV --port {self.replicas[0][1]}`) "
            "or fix --host/--port"
        )
        try:
            self.pool = ReplicaPool(self.replicas, self.connect, per_replica=per, name=self.protocol)
        except (RemoteError, OSError) as exc:
            problems.append(unreachable.format(exc))
            return problems
        self._info["connections"] = f"{per * len(self.replicas)} ({per} per replica)"
        try:
            probe = self.reply_actions(self.pool.submit(self._probe_call()).result())
        except RemoteConnectionError as exc:
            problems.append(unreachable.format(exc))
            return problems
        except (RemoteError, PolicyError) as exc:
            problems.append(f"probe request: {exc}")
            return problems
        self.action_horizon = 1 if probe.ndim == 1 else int(probe.shape[0])
        self._info["reply shape"] = "one action" if probe.ndim == 1 else f"chunks of {self.action_horizon}"
        self._info.update(self.translator.info())
        self._info.update(self.extra_info())
        return problems

    def _probe_call(self) -> Any:
        native = self.translator.probe_observation()  # type: ignore[union-attr]
        return lambda conn: self.request(conn, native)

    def describe(self) -> PolicyDescription:
        problems = self.preflight()
        t = self.translator
        return PolicyDescription(
            family=self.protocol,
            action_horizon=self.action_horizon,
            cameras=t.cameras if t else {},
            state=t.state_sizes if t else {},
            action_dim=self.env_spec.action_dim,
            uses_instruction=bool(t and t.uses_instruction),
            info=dict(self._info),
            problems=list(problems),
            stages=2,
        )

    # -- inference -------------------------------------------------------------------------------
    def submit(self, observation: Observation, env_mask: np.ndarray) -> Future[ActionChunk]:
        problems = self.preflight()
        if problems:
            raise PolicyError(f"{self.protocol}: preflight failed: {'; '.join(problems)}")
        rows = np.flatnonzero(env_mask)
        natives = self.translator.encode(observation, rows)  # type: ignore[union-attr]  # rows read now
        env_ids = observation.env_ids[rows]
        futures = [self.pool.submit(lambda conn, n=n: self.request(conn, n)) for n in natives]  # type: ignore[union-attr]

        def combine(replies: list[Any]) -> ActionChunk:
            out = np.empty((len(replies), self.action_horizon, self.env_spec.action_dim), np.float32)
            for i, reply in enumerate(replies):
                acts = self.reply_actions(reply)
                acts = acts[None] if acts.ndim == 1 else acts
                if acts.shape[0] != self.action_horizon:
                    raise PolicyError(
                        f"{self.protocol}: reply has {acts.shape[0]} actions, the probe at preflight had "
                        f"{self.action_horizon}"
                    )
                out[i] = self.translator.to_env(acts)  # type: ignore[union-attr]
            return ActionChunk(out, env_ids)

        return gather(futures, combine)

    def infer(self, observation: Observation, env_mask: np.ndarray) -> ActionChunk:
        return self.submit(observation, env_mask).result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None
