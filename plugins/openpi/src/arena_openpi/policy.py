"""The ``openpi`` policy family: remote openpi policy servers behind arena's Policy interface.

openpi has no batch form, so the envs that need a chunk at the same moment are sent as
concurrent requests over a pool of connections spread over one or more server replicas
(:meth:`OpenpiPool.infer_many`, results in input order, so each env gets its own chunk).
Keys are translated by a mapping (translator ``openpi:<embodiment>`` or ``--mapping``).

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
import os
from collections.abc import Sequence
from concurrent.futures import Future

import attrs
import numpy as np

from arena.contract import ActionChunk, EnvSpec, Observation
from arena.errors import ArenaError, PolicyError
from arena.futures import completed, gather
from arena.policy import Policy, PolicyDescription
from arena.remote.policy import remote_fields
from arena.validators import at_least
from arena_openpi.layout import ServedLayout
from arena_openpi.mapping import OpenpiMapping, resolve_mapping
from arena_openpi.pool import OpenpiPool, parse_hosts
from arena_openpi.translator import Translator, shape_text
from arena_openpi.wire.client import DEFAULT_PORT, _endpoint, healthz
from arena_openpi.wire.errors import OpenpiError, OpenpiServerError

__all__ = ["API_KEY_ENV", "OpenpiConfig", "OpenpiPolicy"]

log = logging.getLogger(__name__)

API_KEY_ENV = "OPENPI_API_KEY"
"""Environment variable read for the token when --token is not given (keeps it out of `ps`)."""


_F = remote_fields(
    "openpi",
    DEFAULT_PORT,
    API_KEY_ENV,
    ("libero", "droid", "metaworld", "point2d"),
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


class OpenpiPolicy(Policy):
    """Remote openpi policy servers (WebSocket + msgpack-numpy), keys translated by a mapping."""

    Config = OpenpiConfig

    def __init__(self, config: OpenpiConfig, env_spec: EnvSpec, num_envs: int) -> None:
        super().__init__(config, env_spec, num_envs)
        self.hosts = parse_hosts(config.host, config.port)
        self.api_key = config.token or os.environ.get(API_KEY_ENV) or None
        self.pool: OpenpiPool | None = None
        self.translator: Translator | None = None
        self.layout: ServedLayout | None = None
        self.action_horizon = 1
        self.execution_horizon: int | None = None
        self._reply_dim: int | None = None
        self._problems: list[str] | None = None
        self._info: dict[str, str] = {}

    # ------------------------------------------------------------------ preflight

    def _mapping(self) -> OpenpiMapping:
        if self.config.mapping:
            return resolve_mapping(self.config.mapping)
        return OpenpiMapping.registered(self.env_spec)

    def _prepare(self) -> list[str]:
        """Mapping, health, pool, layout, probe: once; every misfit becomes a problem."""
        if self._problems is not None:
            return self._problems
        problems: list[str] = []
        self._problems = problems
        endpoints = ",".join(_endpoint(h, p) for h, p in self.hosts)
        self._info = {"server": endpoints}
        try:
            mapping = self._mapping()
        except ArenaError as exc:
            problems.append(str(exc))
            return problems
        self._info["mapping"] = f"{mapping.name or '-'} ({mapping.source})"
        translator = Translator(mapping, self.env_spec)
        self.translator = translator
        problems.extend(translator.problems)
        unreachable = False
        for host, port in self.hosts:
            health = healthz(host, port, timeout_s=min(5.0, self.config.timeout))
            if not health:
                unreachable = True
                problems.append(
                    f"openpi server at {health.endpoint} is not reachable "
                    f"({health.error or f'GET /healthz answered HTTP {health.status} {health.body!r}'}); start one "
                    f"(e.g. `arena-openpi serve --policy expert --env ENV --port {port}`) or fix --host/--port"
                )
        if unreachable:
            return problems
        try:
            self.pool = OpenpiPool(
                self.hosts,
                self.config.connections_per_host,
                api_key=self.api_key,
                timeout_s=self.config.timeout,
                open_timeout_s=min(10.0, self.config.timeout),
                reconnect_deadline_s=self.config.reconnect_deadline,
            )
            metadata = self.pool.metadata
        except OpenpiError as exc:
            problems.append(f"cannot open connections to {endpoints}: {exc}")
            return problems
        self._info["connections"] = f"{self.pool.size} ({self.config.connections_per_host} per replica)"
        try:
            self.layout = ServedLayout.from_metadata(metadata)
        except ValueError as exc:
            problems.append(f"server metadata: {exc}")
        if self.layout is not None:
            self._info["served"] = f"arena policy {self.layout.policy} on {self.layout.env} (layout from metadata)"
            problems.extend(translator.restrict(self.layout))
        self._info.update(translator.info())
        self._resolve_horizon(mapping, problems)
        for p in problems:
            log.debug("openpi preflight problem: %s", p)
        return problems

    def _resolve_horizon(self, mapping: OpenpiMapping, problems: list[str]) -> None:
        assert self.translator is not None and self.pool is not None
        stated = [
            (n, src)
            for n, src in (
                (self.layout.action_horizon if self.layout else None, "server metadata"),
                (mapping.action_horizon, "mapping action_horizon"),
            )
            if n is not None
        ]
        if len({n for n, _ in stated}) > 1:
            problems.append("action horizon: " + ", ".join(f"{src} says {n}" for n, src in stated))
        horizon, source = stated[0] if stated else (None, "")
        if self.config.probe and not problems:
            found = self._probe(problems)
            if found is not None:
                if horizon is not None and found != horizon:
                    problems.append(
                        f"{self.translator.action_key}: {source} says {horizon} steps per chunk, the server's probe "
                        f"reply has shape {shape_text((found, self._reply_dim or 0))}"
                    )
                horizon, source = found, "probe reply" + (f", matches {source}" if horizon is not None else "")
        if horizon is None:
            if not problems:
                problems.append(
                    "action horizon unknown: the server's metadata does not state it, the mapping has no "
                    "action_horizon, and --probe is off"
                )
            return
        self.action_horizon = horizon
        self._info["action horizon"] = f"{horizon} ({source})"
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

    def _probe(self, problems: list[str]) -> int | None:
        """One inference on a zero observation; the reply's chunk length (None on failure)."""
        assert self.translator is not None and self.pool is not None
        try:
            result = self.pool.infer(self.translator.probe_observation())
        except OpenpiServerError as exc:
            problems.append(
                f"the server failed on the probe observation (keys {sorted(self.translator.keys)}); "
                f"its traceback ends: {_last_line(exc.server_traceback)}"
            )
            return None
        except OpenpiError as exc:
            problems.append(f"probe inference failed: {exc}")
            return None
        value = result.get(self.translator.action_key)
        if isinstance(value, np.ndarray) and value.ndim == 2:
            self._reply_dim = int(value.shape[1])
        try:
            actions = self.translator.reply_actions(result)
        except PolicyError as exc:
            problems.append(f"probe: {str(exc).removeprefix('openpi: ')}")
            return None
        return int(actions.shape[0])

    # ------------------------------------------------------------------ Policy

    def describe(self) -> PolicyDescription:
        problems = self._prepare()
        t = self.translator
        return PolicyDescription(
            family="openpi",
            action_horizon=self.action_horizon,
            execution_horizon=self.execution_horizon,
            cameras=t.cameras if t else {},
            state=t.state_sizes if t else {},
            action_dim=self._reply_dim if self._reply_dim is not None else self.env_spec.action_dim,
            uses_instruction=t.uses_instruction if t else False,
            info=dict(self._info),
            problems=list(problems),
            stages=2,  # a remote server: hide its latency behind the other group's env steps
        )

    def infer(self, observation: Observation, env_mask: np.ndarray) -> ActionChunk:
        return self.submit(observation, env_mask).result()

    def submit(self, observation: Observation, env_mask: np.ndarray) -> Future[ActionChunk]:
        """Encode every row now, queue one request per row on the pool; decode when all are back."""
        problems = self._prepare()
        if problems:
            raise PolicyError("openpi policy cannot run: " + "; ".join(problems))
        assert self.translator is not None and self.pool is not None
        rows = np.flatnonzero(env_mask)
        env_ids = observation.env_ids[rows]
        if not len(rows):
            return completed(
                ActionChunk(np.zeros((0, self.action_horizon, self.env_spec.action_dim), np.float32), env_ids)
            )
        requests = self.translator.encode(observation, rows)
        translator, horizon = self.translator, self.action_horizon
        pool = self.pool
        futures = [pool.submit(r) for r in requests]
        return _map_errors(
            gather(futures, lambda results: ActionChunk(translator.decode(results, horizon), env_ids)), env_ids
        )

    def reset(self, env_ids: Sequence[int], seeds: Sequence[int] | None = None) -> None:
        """Nothing to reset: openpi requests are independent (the protocol has no reset)."""

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()


def _map_errors(future: Future[ActionChunk], env_ids: np.ndarray) -> Future[ActionChunk]:
    """The same outcome, with openpi errors as PolicyErrors naming the envs."""
    out: Future[ActionChunk] = Future()

    def done(f: Future[ActionChunk]) -> None:
        exc = f.exception()
        if exc is None:
            out.set_result(f.result())
        elif isinstance(exc, OpenpiServerError):
            err = PolicyError(
                f"openpi server {exc.endpoint} failed during inference for env(s) {env_ids.tolist()}; "
                f"server traceback:\n{exc.server_traceback}"
            )
            err.__cause__ = exc
            out.set_exception(err)
        elif isinstance(exc, OpenpiError):
            err = PolicyError(f"openpi: inference for env(s) {env_ids.tolist()} failed: {exc}")
            err.__cause__ = exc
            out.set_exception(err)
        else:
            out.set_exception(exc)

    future.add_done_callback(done)
    return out


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(empty)"
