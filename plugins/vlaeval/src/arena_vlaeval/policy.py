"""The ``vlaeval`` policy family: any model served by vla-eval, one session per env slot.

The kit's :class:`~arena.remote.policy.RemotePolicy` (replicas, mapping, translator, cached
preflight, probe) with vla-eval's session semantics: slot i keeps its own WebSocket session
to replica ``i % R`` (the server keys its chunk buffer and history by connection), sends
``episode_start`` when the slot's episode starts and ``episode_end`` with arena's outcome
when it ends. A 1-D reply is one action per query, a 2-D one a chunk for arena's schedulers.
A session that drops mid-episode is not reopened for that episode: its rows come back as
:attr:`~arena.contract.ActionChunk.lost` and the evaluator runs the episode again with its
seed on a fresh session.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import attrs
import numpy as np

from arena.contract import ActionChunk, EnvSpec, Observation
from arena.errors import PolicyError
from arena.remote.errors import RemoteConnectionError, RemoteTimeoutError
from arena.remote.policy import RemotePolicy, remote_fields
from arena.results import EpisodeRecord
from arena.validators import at_least, one_of
from arena_vlaeval.mapping import PACKAGED_MAPPINGS, VlaevalMapping, VlaevalTranslator, packaged_mapping
from arena_vlaeval.wire.codec import DEFAULT_MAX_MESSAGE_BYTES, IMAGE_FORMATS
from arena_vlaeval.wire.errors import VlaevalError, VlaevalSessionLost
from arena_vlaeval.wire.session import DEFAULT_PORT, Session

__all__ = ["TOKEN_ENV", "VlaevalConfig", "VlaevalPolicy"]

log = logging.getLogger(__name__)

TOKEN_ENV = "VLAEVAL_TOKEN"
_F = remote_fields(
    "vla-eval",
    DEFAULT_PORT,
    TOKEN_ENV,
    tuple(PACKAGED_MAPPINGS),
    spread="env slots are spread over them, one session each",
    token_help="sent as 'Authorization: Bearer TOKEN' (an arena extension: stock vla-eval servers have no token)",
    prefix="vlaeval",
)


@attrs.define
class VlaevalConfig:
    """Client flags of ``--policy vlaeval``."""

    host: str = _F.host
    port: int = _F.port
    token: str | None = _F.token
    timeout: float = _F.timeout
    mapping: str | None = _F.mapping
    image_format: str = attrs.field(
        default="png",
        validator=one_of(*IMAGE_FORMATS),
        metadata={
            "identity": False,
            "help": "how images travel: png (lossless, default), raw (no encoding cost, ~2x the bytes), jpeg (lossy)",
        },
    )
    max_message_bytes: int = attrs.field(
        default=DEFAULT_MAX_MESSAGE_BYTES,
        validator=at_least(1024),
        metadata={"identity": False, "help": "largest message accepted from the server, in bytes"},
    )


class _Lost:
    __slots__ = ("cause",)

    def __init__(self, cause: str) -> None:
        self.cause = cause


class SlotSessions:
    """The policy's 'pool': one session per env slot, opened on demand; a probe runs on a fresh one."""

    def __init__(self, policy: VlaevalPolicy) -> None:
        self.policy = policy
        n = policy.num_envs
        self.sessions: list[Session | None] = [None] * n
        self.started = [False] * n  # episode_start sent on the slot's current session
        self.t0 = [0.0] * n  # when each slot's episode started (episode_end's elapsed_sec)
        # every replica greets once (fail fast, read its specs); closed at once: a session holds a server slot
        self.hellos: list[dict[str, Any]] = []
        for host, port in policy.replicas:
            session = policy.connect(host, port)
            session.close()
            self.hellos.append(session.server_info)
        self.server_info = self.hellos[0]
        self._threads = ThreadPoolExecutor(max(1, n), thread_name_prefix="vlaeval-slot")

    @property
    def connections(self) -> list[Session | None]:
        """One (lazily opened) session per env slot."""
        return self.sessions

    def submit(self, request: Callable[[Session], Any]) -> Future[Any]:
        """``request`` on a fresh session inside a probe episode (the preflight probe)."""

        def run() -> Any:
            session = self.policy.connect(*self.policy.replicas[0])
            try:
                session.episode_start({"name": "arena preflight probe", "suite": self.policy.env_spec.name})
                out = request(session)
                session.episode_end({"success": False, "probe": True}, 1, 0.0)
                return out
            finally:
                session.close()

        return self._threads.submit(run)

    def slot_session(self, slot: int) -> Session:
        session = self.sessions[slot]
        if session is None or session.lost:
            host, port = self.policy.replicas[slot % len(self.policy.replicas)]
            session = self.sessions[slot] = self.policy.connect(host, port)
            self.started[slot] = False
        return session

    def run(self, job: Callable[[], Any]) -> Future[Any]:
        return self._threads.submit(job)

    def close(self) -> None:
        self._threads.shutdown(wait=True, cancel_futures=True)
        for s in self.sessions:
            if s is not None:
                s.close()


class VlaevalPolicy(RemotePolicy):
    """Models served by vla-eval (WebSocket + msgpack), one session per env slot."""

    Config = VlaevalConfig
    protocol = "vla-eval"
    family = "vlaeval"
    default_port = DEFAULT_PORT
    token_env = TOKEN_ENV
    mapping_class = VlaevalMapping
    translator_class = VlaevalTranslator
    packaged_mappings = {n: packaged_mapping(n) for n in PACKAGED_MAPPINGS}

    def __init__(self, config: VlaevalConfig, env_spec: EnvSpec, num_envs: int) -> None:
        super().__init__(config, env_spec, num_envs)
        self._tasks: dict[int, dict[str, Any]] = {}  # slot -> episode_start task, until sent

    # -- the wire --------------------------------------------------------------------------------
    def connect(self, host: str, port: int) -> Session:
        return Session(
            host,
            port,
            timeout_s=self.config.timeout,
            token=self.token,
            image_format=self.config.image_format,
            max_message_bytes=self.config.max_message_bytes,
        )

    def request(self, connection: Session, native: Mapping[str, Any]) -> dict[str, Any]:
        return connection.act(dict(native))

    def reply_actions(self, reply: Mapping[str, Any]) -> np.ndarray:
        if not isinstance(reply, Mapping) or "actions" not in reply:
            keys = sorted(map(str, reply)) if isinstance(reply, Mapping) else type(reply).__name__
            raise PolicyError(f"vlaeval: the action reply has no 'actions' (got {keys})")
        value = np.asarray(reply["actions"]) if isinstance(reply["actions"], list) else reply["actions"]
        ndim = 1 if isinstance(value, np.ndarray) and value.ndim == 1 else 2  # anything else: the (H, A) message
        return self.translator.check_actions(value, "reply 'actions'", ndim=ndim)

    # -- preflight -------------------------------------------------------------------------------
    def connections_per_replica(self) -> int:
        return max(1, -(-self.num_envs // len(self.replicas)))

    def open_pool(self) -> SlotSessions:
        return SlotSessions(self)

    def connected(self, mapping: VlaevalMapping, problems: list[str]) -> None:
        info = self.pool.server_info
        self._info["served by"] = str(info.get("model_server", "?")) + f" (vla-eval {info.get('harness_version', '?')})"
        for other, (host, port) in zip(self.pool.hellos[1:], self.replicas[1:]):
            if (other.get("action_spec"), other.get("model_server")) != (
                info.get("action_spec"),
                info.get("model_server"),
            ):
                problems.append(f"replicas disagree: {host}:{port} serves another model or action spec than the first")
        found, notes = self.translator.check_conventions(info)
        problems.extend(found)
        self._info.update(notes)
        self.translator.restrict(info)

    def extra_info(self) -> dict[str, str]:
        return {"sessions": f"one per env slot ({self.num_envs}), image format {self.config.image_format}"}

    # -- episodes --------------------------------------------------------------------------------
    def reset(self, env_ids: Sequence[int], seeds: Sequence[int] | None = None) -> None:
        for k, slot in enumerate(env_ids):
            task = {"suite": self.env_spec.name, "slot": int(slot)}
            if seeds is not None:
                task["seed"] = int(seeds[k])
            self._tasks[int(slot)] = task

    def episode_end(self, env_ids: Sequence[int], records: Sequence[EpisodeRecord]) -> None:
        if self.pool is None:
            return
        for slot, record in zip(env_ids, records):
            session = self.pool.sessions[int(slot)]
            if session is None or session.lost or not self.pool.started[int(slot)]:
                continue
            metrics = {
                "success": bool(record.success),
                "failure_reason": record.failure_reason or "",
                "task": record.task,
            }
            try:
                session.episode_end(metrics, record.length, time.monotonic() - self.pool.t0[int(slot)])
            except VlaevalError as exc:  # the episode is recorded; the next one opens a new session
                log.warning("episode_end for slot %d not delivered: %s", slot, exc)
            self.pool.started[int(slot)] = False

    def _act(self, slot: int, native: dict[str, Any], instruction: str) -> Any:
        pool: SlotSessions = self.pool
        task = self._tasks.pop(slot, None)
        try:
            if task is None and not pool.started[slot]:
                return _Lost("no episode_start for this episode on the slot's session")
            if task is not None:
                session = pool.slot_session(slot)
                if pool.started[slot]:  # the previous episode was not ended (lost): a new session
                    session.close()
                    pool.sessions[slot] = None
                    session = pool.slot_session(slot)
                session.episode_start({**task, "name": instruction, "task_description": instruction})
                pool.started[slot] = True
                pool.t0[slot] = time.monotonic()
            else:
                session = pool.sessions[slot]
                if session is None or session.lost:
                    return _Lost("the session was lost mid-episode")
            return session.act(native)
        except (VlaevalSessionLost, RemoteTimeoutError) as exc:
            pool.started[slot] = False
            return _Lost(str(exc))
        except RemoteConnectionError as exc:  # could not open a session at an episode start
            return _Lost(str(exc))

    def dispatch(
        self, observation: Observation, rows: np.ndarray, env_ids: np.ndarray, native: Any
    ) -> tuple[list[Future], Callable[[list[Any]], ActionChunk]]:
        """Each row on its slot's own session; rows whose session was lost come back as ``lost``."""
        texts = [str(observation.instruction[int(r)]) for r in rows]  # read now: the rows may change after
        futures = [
            self.pool.run(lambda e=int(e), n=n, t=t: self._act(e, n, t)) for e, n, t in zip(env_ids, native, texts)
        ]
        horizon, width = self.action_horizon, self.env_spec.action_dim

        def combine(replies: list[Any]) -> ActionChunk:
            out = np.zeros((len(replies), horizon, width), np.float32)
            lost = {}
            for i, reply in enumerate(replies):
                if isinstance(reply, _Lost):
                    lost[int(env_ids[i])] = reply.cause
                else:
                    out[i] = self.decode(reply)
            return ActionChunk(out, env_ids, lost=lost)

        return futures, combine
