"""``RemotePolicy``: the template of every remote policy family (GR00T, openpi, OpenVLA).

A family writes its wire format (a codec and a per-replica connection) and three hooks;
the template does the rest: replica list and pool, the mapping (``--mapping NAME|PATH``
or the one registered for the env's embodiment), a translator resolved by name, one cached
preflight (reachability, pool, probe) whose misfits are ``describe().problems`` (what
``arena check`` prints), ``submit`` fanned out over replicas (one observation per request)
or split over them (``batched = True``: one batch, a contiguous piece per replica),
``infer``, ``close``. The config fields every such family has come from
:func:`remote_fields`, with the right identity and secret metadata.

Hooks a thin request/response family writes (docs/writing-a-protocol-family.md)::

    connect(host, port) -> connection          # one per pool slot; closed with .close()
    request(connection, native_obs) -> reply   # one request; raise RemoteError subclasses
    reply_actions(reply) -> np.ndarray         # (H, width) or (width,) in the reply's columns

Hooks a richer protocol overrides, each with a default: ``check_reachable`` (a TCP connect
per replica), ``open_pool``, ``make_translator`` (None: built in ``connected`` from what
the server states), ``connected`` (read server metadata), ``stated_horizons``, ``probe``,
``probe_problem``, ``extra_info``, ``encode``/``split``/``decode_batch`` (batched),
``request_error``.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any, ClassVar

import attrs
import numpy as np

from arena.contract import ActionChunk, EnvSpec, Observation
from arena.errors import ArenaError, PolicyError
from arena.futures import completed, gather
from arena.policy import Policy, PolicyDescription
from arena.remote.errors import RemoteConnectionError, RemoteError
from arena.remote.fanout import ReplicaPool
from arena.remote.hosts import HostPort, host_label, parse_hosts
from arena.remote.keymap import KeyMapping, mapping_for
from arena.remote.translate import KeyTranslator, shape_text
from arena.validators import accepted_by, at_least, in_range

__all__ = ["RemotePolicy", "map_errors", "remote_fields"]

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
    prefix: str | None = None,
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
                f"env's embodiment, {prefix or protocol}:EMBODIMENT"
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
    """A remote policy server behind arena's Policy interface; subclasses implement the hooks."""

    protocol: ClassVar[str] = "remote"
    #: the family name in ``describe()`` and messages (default: ``protocol``)
    family: ClassVar[str] = ""
    default_port: ClassVar[int] = 8000
    token_env: ClassVar[str] = ""
    mapping_class: ClassVar[type[KeyMapping]] = KeyMapping
    translator_class: ClassVar[type[KeyTranslator]] = KeyTranslator
    #: packaged mapping name -> resource (``--mapping NAME``)
    packaged_mappings: ClassVar[Mapping[str, Any]] = {}
    #: True: one request carries the whole batch, split over replicas (``split``/``decode_batch``)
    batched: ClassVar[bool] = False
    #: what a request is called in messages (``get_action`` for GR00T)
    request_name: ClassVar[str] = "inference"

    def __init__(self, config: Any, env_spec: EnvSpec, num_envs: int) -> None:
        super().__init__(config, env_spec, num_envs)
        self.replicas: list[HostPort] = parse_hosts(config.host, config.port)
        self.token: str | None = config.token or (os.environ.get(self.token_env) if self.token_env else None) or None
        self.pool: Any = None
        self.translator: Any = None
        self.action_horizon = 1
        self.execution_horizon: int | None = None
        self._problems: list[str] | None = None
        self._info: dict[str, str] = {}

    @property
    def name(self) -> str:
        return self.family or self.protocol

    @property
    def endpoints(self) -> str:
        return ",".join(host_label(h, p) for h, p in self.replicas)

    # -- hooks: the wire -------------------------------------------------------------------------
    def connect(self, host: str, port: int) -> Any:
        """A connection to one replica (one per pool slot)."""
        raise NotImplementedError

    def request(self, connection: Any, native: Any) -> Any:
        """Send one native observation (batched: a piece of the batch), return the decoded reply."""
        raise NotImplementedError

    def reply_actions(self, reply: Any) -> np.ndarray:
        """The reply's actions, (H, width) or (width,), in the reply's column order."""
        raise NotImplementedError

    # -- hooks: preflight ------------------------------------------------------------------------
    def mapping(self) -> KeyMapping:
        return mapping_for(self.mapping_class, self.config.mapping, self.packaged_mappings, self.env_spec)

    def make_translator(self, mapping: KeyMapping) -> Any:
        """The translator, before any server is contacted; None to build it in :meth:`connected`."""
        return self.translator_class(mapping, self.env_spec)

    def unreachable(self, host: str, port: int, reason: str) -> str:
        return (
            f"{self.protocol} server at {host_label(host, port)} is not reachable ({reason}); start one "
            f"(e.g. `arena-{self.name} serve --policy expert --env ENV --port {port}`) or fix --host/--port"
        )

    def check_reachable(self) -> list[str]:
        """A problem per replica whose port refuses a TCP connection (fast and clear, before any retries)."""
        out = []
        for host, port in self.replicas:
            try:
                with socket.create_connection((host, port), timeout=min(2.0, self.config.timeout)):
                    pass
            except OSError as exc:
                reason = "connection refused" if isinstance(exc, ConnectionRefusedError) else (exc.strerror or str(exc))
                out.append(self.unreachable(host, port, reason))
        return out

    def connections_per_replica(self) -> int:
        per = getattr(self.config, "connections_per_host", None)
        return per or max(1, math.ceil(self.num_envs / len(self.replicas)))

    def open_pool(self) -> Any:
        """The replica pool; a RemoteError/OSError here is a problem naming the endpoints."""
        return ReplicaPool(self.replicas, self.connect, per_replica=self.connections_per_replica(), name=self.name)

    def connected(self, mapping: KeyMapping, problems: list[str]) -> None:
        """The pool is open: read what the server states (metadata), build a late translator."""

    def stated_horizons(self, mapping: KeyMapping) -> list[tuple[int, str]]:
        """Chunk lengths stated before the probe, as (length, source); the probe checks them."""
        return []

    def probe_problem(self, exc: Exception) -> str:
        if isinstance(exc, PolicyError):  # the reply does not fit
            return f"probe: {str(exc).removeprefix(self.name + ': ')}"
        return f"probe request failed: {exc}"

    def probe(self, mapping: KeyMapping, problems: list[str]) -> None:
        """One request with a zero observation: learn the chunk length, check the reply."""
        stated = self.stated_horizons(mapping)
        if len({n for n, _ in stated}) > 1:
            problems.append("action horizon: " + ", ".join(f"{src} says {n}" for n, src in stated))
        horizon, source = stated[0] if stated else (None, "")
        if getattr(self.config, "probe", True) and not problems:
            try:
                reply = self.pool.submit(self._probe_call()).result()
                actions = self.reply_actions(reply)
            except RemoteConnectionError as exc:
                problems.append(self.unreachable(*self.replicas[0], str(exc)))
                return
            except (RemoteError, PolicyError) as exc:
                problems.append(self.probe_problem(exc))
                return
            found = 1 if actions.ndim == 1 else int(actions.shape[0])
            if horizon is not None and found != horizon:
                problems.append(
                    f"{self.translator.action_key}: {source} says {horizon} steps per chunk, the server's probe "
                    f"reply has shape {shape_text(actions.shape)}"
                )
            self._info["reply shape"] = "one action" if actions.ndim == 1 else f"chunks of {found}"
            horizon, source = found, "probe reply" + (f", matches {source}" if horizon is not None else "")
        if horizon is None:
            if not problems:
                problems.append(
                    "action horizon unknown: the server's metadata does not state it, the mapping has no action_horizon, "
                    "and --probe is off"
                )
            return
        self.action_horizon = horizon
        self._info["action horizon"] = f"{horizon} ({source})"

    def extra_info(self) -> dict[str, str]:
        """More ``arena check`` lines (e.g. ``unnorm_key``)."""
        return {}

    # -- preflight -------------------------------------------------------------------------------
    def preflight(self) -> list[str]:
        """Mapping, reachability, pool, what the server states, probe: once; every misfit is a problem."""
        if self._problems is not None:
            return self._problems
        problems: list[str] = []
        self._problems = problems
        self._info = {"server": self.endpoints}
        try:
            mapping = self.mapping()
        except ArenaError as exc:  # MappingError, or a plugin failing to load
            problems.append(str(exc))
            return problems
        self._info["mapping"] = f"{getattr(mapping, 'name', '') or '-'} ({mapping.source})"
        self.translator = self.make_translator(mapping)
        if self.translator is not None:
            problems.extend(self.translator.problems)
        problems.extend(self.check_reachable())
        if problems:
            return problems
        try:
            self.pool = self.open_pool()
        except (RemoteError, OSError) as exc:
            problems.append(f"cannot open connections to {self.endpoints}: {exc}")
            return problems
        self._info["connections"] = f"{len(self.pool.connections)} ({self.connections_per_replica()} per replica)"
        self.connected(mapping, problems)
        if self.translator is not None:
            self._info.update(self.translator.info())
            self.probe(mapping, problems)  # sends nothing while there are problems
        self._info.update(self.extra_info())
        for p in problems:
            log.debug("%s preflight problem: %s", self.name, p)
        return problems

    def _probe_call(self) -> Any:
        native = self.translator.probe_observation()
        return lambda conn: self.request(conn, native)

    def describe(self) -> PolicyDescription:
        problems = self.preflight()
        t = self.translator
        return PolicyDescription(
            family=self.name,
            action_horizon=self.action_horizon,
            execution_horizon=self.execution_horizon,
            cameras=t.cameras if t else {},
            state=t.state_sizes if t else {},
            action_dim=self.env_spec.action_dim,
            uses_instruction=bool(t and t.uses_instruction),
            info=dict(self._info),
            problems=list(problems),
            stages=2,  # a remote server: hide its latency behind the other group's env steps
        )

    # -- hooks: inference ------------------------------------------------------------------------
    def encode(self, observation: Observation, rows: np.ndarray) -> Any:
        """Native observations of ``rows``: a list, one per row (batched: one batch)."""
        return self.translator.encode(observation, rows)

    def decode(self, reply: Any) -> np.ndarray:
        """One reply -> (horizon, A) in the env's action order."""
        acts = self.reply_actions(reply)
        acts = acts[None] if acts.ndim == 1 else acts
        if acts.shape[0] != self.action_horizon:
            raise PolicyError(
                f"{self.name}: reply has {acts.shape[0]} actions, the chunk length established at preflight is "
                f"{self.action_horizon}"
            )
        return self.translator.to_env(acts)

    def split(self, native: Any, start: int, stop: int) -> Any:
        """Batched: rows ``[start, stop)`` of one native batch."""
        raise NotImplementedError

    def decode_batch(self, reply: Any, rows: int) -> np.ndarray:
        """Batched: one reply for ``rows`` rows -> (rows, horizon, A) in the env's action order."""
        raise NotImplementedError

    def request_error(self, exc: BaseException, env_ids: np.ndarray) -> BaseException:
        """What a failed request becomes: a PolicyError naming the envs (other exceptions pass)."""
        if isinstance(exc, RemoteError):
            err = PolicyError(f"{self.name}: {self.request_name} for env(s) {env_ids.tolist()} failed: {exc}")
            err.__cause__ = exc
            return err
        return exc

    # -- inference -------------------------------------------------------------------------------
    def submit(self, observation: Observation, env_mask: np.ndarray) -> Future[ActionChunk]:
        """Encode every row now (the rows are read before returning); requests run on the pool."""
        problems = self.preflight()
        if problems:
            raise PolicyError(f"{self.name} policy cannot run: {'; '.join(problems)}")
        rows = np.flatnonzero(env_mask)
        env_ids = observation.env_ids[rows]
        if not len(rows):
            return completed(
                ActionChunk(np.zeros((0, self.action_horizon, self.env_spec.action_dim), np.float32), env_ids)
            )
        native = self.encode(observation, rows)
        futures, combine = self.dispatch(observation, rows, env_ids, native)
        return map_errors(gather(futures, combine), lambda exc: self.request_error(exc, env_ids))

    def dispatch(
        self, observation: Observation, rows: np.ndarray, env_ids: np.ndarray, native: Any
    ) -> tuple[list[Future], Callable[[list[Any]], ActionChunk]]:
        """Start the requests of one query: (their futures, how their results combine into the chunk).

        Default: one request per observation over the pool, or (``batched``) a piece of the
        batch per replica. A protocol with sessions (vla-eval) routes each row to its slot's own.
        """
        if self.batched:
            future = self.pool.submit_split(len(rows), lambda conn, a, b: self.request(conn, self.split(native, a, b)))

            def combine_pieces(pieces: list[list[tuple[int, int, Any]]]) -> ActionChunk:
                parts = [self.decode_batch(reply, b - a) for a, b, reply in pieces[0]]
                return ActionChunk(np.concatenate(parts) if len(parts) > 1 else parts[0], env_ids)

            return [future], combine_pieces
        futures = [self.pool.submit(lambda conn, n=n: self.request(conn, n)) for n in native]

        def combine(replies: list[Any]) -> ActionChunk:
            out = np.empty((len(replies), self.action_horizon, self.env_spec.action_dim), np.float32)
            for i, reply in enumerate(replies):
                out[i] = self.decode(reply)
            return ActionChunk(out, env_ids)

        return futures, combine

    def infer(self, observation: Observation, env_mask: np.ndarray) -> ActionChunk:
        return self.submit(observation, env_mask).result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()  # idempotent; kept for diagnostics (connections' counters)


def map_errors(future: Future[ActionChunk], convert: Any) -> Future[ActionChunk]:
    """The same outcome, with a failure passed through ``convert``."""
    out: Future[ActionChunk] = Future()

    def done(f: Future[ActionChunk]) -> None:
        exc = f.exception()
        if exc is None:
            out.set_result(f.result())
        else:
            out.set_exception(convert(exc))

    future.add_done_callback(done)
    return out
