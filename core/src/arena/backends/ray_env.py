"""``RayVectorEnv``: the arena VectorEnv over W Ray env shards of K slots each.

The coordinator (this process) holds the policy and runs the usual loop;
this class is the only thing that knows slots live in actors. Global slot
``s`` is local slot ``s % K`` of shard ``s // K``. A call on a slot subset
becomes one message per shard touched (a whole chunk each) over the
shard's ZeroMQ link (:mod:`arena.backends.ray_link`), started at once and
gathered later, so shards step in parallel and the loop overlaps them
with policy queries (:meth:`step_async` / :meth:`ready` / :meth:`wait`).
Ray places, starts, watches and kills the shards.

Faults: a shard that dies (SIGKILL, node removed: Ray reports the death
through the shard's pending ``watch`` call), fails outside its env, or
does not answer within ``shard_timeout_s`` is killed and
replaced by a fresh actor, and every episode it was running comes back as
LOST (``StepResult.lost``): the loop re-runs it with its seed. Slots of a
replaced shard are invalid until their next reset, so an episode whose
slot was idle when its shard died is lost too, never continued on a fresh
simulator. Ray's own restarts and task retries are off (``max_restarts=0``,
``max_task_retries=0``): a retried step would run on a fresh actor whose
env was never reset. An exception raised by the env itself is what it is on
one host: an env failure of the call's episodes, recorded at once.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import zmq

from arena.backends.ray_codec import ShardReply, pack_call, unpack_reply
from arena.backends.ray_link import ShardLink
from arena.backends.ray_shard import EnvShard
from arena.contract import Observation
from arena.env import ChunkNativeEnv, EpisodeSpec, StepHandle, StepResult
from arena.errors import ArenaError

log = logging.getLogger(__name__)

__all__ = ["RayVectorEnv", "ShardPlacementError"]


class ShardPlacementError(ArenaError):
    """A shard's resources could not be had within the placement timeout."""


#: how often a wait for replies looks at whether a shard died (Ray reports deaths in 0.05-0.15 s)
_DEATH_CHECK_S = 0.05


@attrs.define
class _Shard:
    index: int
    actor: Any
    generation: int
    link: ShardLink
    watch: Any  # the pending ``watch`` call: it fails when the actor dies
    where: str = ""
    dead: str | None = None  # why, once its death is known
    renders_before: int = 0  # renders of its replaced predecessors
    renders: int = 0


@attrs.define
class _Part:
    """The rows of one call that went to one shard."""

    shard: int
    generation: int
    positions: np.ndarray  # positions within the call's env_ids
    local: np.ndarray  # the shard's local slot ids
    seq: int = 0  # the call's number on the shard's link; 0: not sent (the rows are lost)
    lost: str | None = None


@attrs.define
class _Call:
    kind: str
    parts: list[_Part]
    deadline: float


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        if line.strip():
            return f"{type(exc).__name__}: {line.strip()}"
    return type(exc).__name__


def actor_options(resources: Mapping[str, float]) -> dict[str, Any]:
    """Ray actor options for one shard from a resource request like ``{"CPU": 1, "sim": 1}``."""
    res = dict(resources)
    opts: dict[str, Any] = {
        "num_cpus": float(res.pop("CPU", 0.0)),
        "num_gpus": float(res.pop("GPU", 0.0)),
        "max_restarts": 0,
        "max_task_retries": 0,
        # watch() waits while start/stop/ping run; the env itself lives on the shard's link thread
        "max_concurrency": 4,
    }
    if res:
        opts["resources"] = {k: float(v) for k, v in res.items()}
    return opts


class RayVectorEnv(ChunkNativeEnv):
    """``workers * envs_per_worker`` slots in ``workers`` Ray actors, each built by the env family."""

    async_steps = True  # type: ignore[misc]

    def __init__(
        self,
        ray: Any,
        env_id: str,
        env_config: Any,
        workers: int,
        envs_per_worker: int,
        resources: Mapping[str, float],
        placement_timeout_s: float = 60.0,
        shard_timeout_s: float = 300.0,
        runtime: Any = None,
    ) -> None:
        self._ray = ray
        self._runtime = runtime  # a RayRuntime to leave on close (it may stop a local Ray)
        self.env_id = env_id
        self.env_config = env_config
        self.workers = workers
        self.per = envs_per_worker
        self.num_envs = workers * envs_per_worker
        self.resources = dict(resources)
        self.placement_timeout_s = placement_timeout_s
        self.shard_timeout_s = shard_timeout_s
        self.replaced = 0
        self._closed = False
        self._remote = ray.remote(EnvShard)
        self._options = actor_options(self.resources)
        self._ctx = zmq.Context()
        self.shards: list[_Shard] = []
        actors: list[Any] = []
        try:
            actors = [self._new_actor() for _ in range(workers)]
            self._await_placement(actors)
            tokens = [secrets.token_bytes(32) for _ in actors]
            infos = self._get(
                [self._start(a, t) for a, t in zip(actors, tokens)], self.shard_timeout_s, "building its env"
            )
            self.spec = infos[0]["spec"]
            self._max_reply = _max_reply_bytes(self.spec, envs_per_worker)
            self.shards = [self._shard(i, a, t, info) for i, (a, t, info) in enumerate(zip(actors, tokens, infos))]
        except BaseException:
            for a in actors:
                self._kill(a)
            self._ctx.term()
            raise
        n = self.num_envs
        self._obs = Observation(
            images={cam: np.zeros((n, h, w, 3), np.uint8) for cam, (h, w) in self.spec.cameras.items()},
            state={g: np.zeros((n, len(el)), np.float32) for g, el in self.spec.state_groups.items()},
            instruction=[""] * n,
            env_ids=np.arange(n),
        )
        self._dims = {g: len(el) for g, el in self.spec.state_groups.items()}
        self.valid = np.zeros(n, bool)  # the slot's simulator holds the episode the loop thinks it runs
        log.info("ray backend: %d shards of %d slots: %s", workers, envs_per_worker, [s.where for s in self.shards])

    # -- actors ----------------------------------------------------------------------------------
    def _start(self, actor: Any, token: bytes) -> Any:
        return actor.start.remote(self.env_id, self.env_config, self.per, self._options["num_cpus"], token)

    def _shard(self, index: int, actor: Any, token: bytes, info: Mapping[str, Any], generation: int = 0) -> _Shard:
        link = ShardLink(self._ctx, info["endpoint"], token, self._max_reply)
        return _Shard(index, actor, generation, link, actor.watch.remote(), _where(index, info, generation))

    def _new_actor(self) -> Any:
        return self._remote.options(**self._options).remote()

    def _kill(self, actor: Any) -> None:
        try:
            self._ray.kill(actor, no_restart=True)
        except Exception:  # noqa: BLE001 - it may be gone already
            log.debug("killing a shard failed", exc_info=True)

    def _get(self, refs: list[Any], timeout: float, doing: str) -> list[Any]:
        try:
            return self._ray.get(refs, timeout=timeout)
        except self._ray.exceptions.GetTimeoutError:
            raise ArenaError(f"ray backend: a shard took longer than {timeout:g} s {doing}") from None
        except self._ray.exceptions.RayError as exc:
            raise ArenaError(f"ray backend: a shard failed {doing}: {_first_line(exc)}") from None

    def _await_placement(self, actors: list[Any]) -> None:
        """Wait until every actor is placed; Ray would leave an unplaceable one pending forever."""
        refs = [a.ping.remote() for a in actors]
        ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=self.placement_timeout_s)
        if len(ready) < len(refs):
            try:
                available = {k: v for k, v in self._ray.available_resources().items() if not k.startswith("node:")}
            except Exception:  # noqa: BLE001 - only for the message
                available = {}
            raise ShardPlacementError(
                f"ray backend: {len(refs) - len(ready)} of {len(refs)} shards could not be placed within "
                f"{self.placement_timeout_s:g} s: each asks for resources {self.resources} "
                f"(--worker-resources); the cluster has {available or 'nothing'} available"
            )
        self._get(ready, self.placement_timeout_s, "starting")

    def _replace(self, index: int, generation: int, reason: str) -> None:
        """Kill shard ``index`` (if still at ``generation``) and start a fresh one in its place."""
        shard = self.shards[index]
        if shard.generation != generation or self._closed:
            return  # already replaced for another call of the same failure
        log.warning("ray backend: %s lost (%s); replacing it", shard.where, reason)
        shard.link.close()
        self._kill(shard.actor)
        lo = index * self.per
        self.valid[lo : lo + self.per] = False
        actor = self._new_actor()
        self._await_placement([actor])
        token = secrets.token_bytes(32)
        (info,) = self._get([self._start(actor, token)], self.shard_timeout_s, "building its env")
        fresh = self._shard(index, actor, token, info, generation + 1)
        fresh.renders_before = shard.renders_before + shard.renders
        self.shards[index] = fresh
        self.replaced += 1

    # -- calls -----------------------------------------------------------------------------------
    def _split(self, env_ids: np.ndarray, check_valid: bool) -> list[_Part]:
        parts: dict[int, list[int]] = {}
        for pos, slot in enumerate(env_ids.tolist()):
            parts.setdefault(slot // self.per, []).append(pos)
        out = []
        for index, positions in parts.items():
            pos = np.asarray(positions, np.int64)
            part = _Part(index, self.shards[index].generation, pos, env_ids[pos] % self.per)
            if check_valid and not self.valid[env_ids[pos]].all():
                part.lost = f"{self.shards[index].where} was replaced since this episode started"
            out.append(part)
        return out

    def _send(self, kind: str, env_ids: np.ndarray, pack: Any, check_valid: bool) -> StepHandle:
        """Start one call per shard touched; ``pack(part)`` gives the part's message."""
        call = _Call(kind, self._split(env_ids, check_valid), time.monotonic() + self.shard_timeout_s)
        for part in call.parts:
            if part.lost is None:
                part.seq = self.shards[part.shard].link.send(pack(part))
        return StepHandle(env_ids, state=call)

    def _collect(self, handle: StepHandle) -> StepResult:
        call: _Call = handle.state  # type: ignore[assignment]
        ids = handle.env_ids
        n = len(ids)
        success = np.zeros(n, bool)
        steps = np.zeros(n, np.int64)
        errors: list[str | None] = [None] * n
        lost = np.zeros(n, bool)
        replies = self._fetch(call)
        for part, reply in zip(call.parts, replies):
            if isinstance(reply, str):  # the env raised: these episodes fail, as on one host
                for p in part.positions.tolist():
                    errors[p] = reply
                if call.kind == "reset":
                    self.valid[ids[part.positions]] = False
                continue
            if reply is None:
                lost[part.positions] = True
                for p in part.positions.tolist():
                    errors[p] = part.lost
                continue
            self._absorb(part, reply, ids)
            success[part.positions] = reply.success
            steps[part.positions] = 1 if reply.steps is None else reply.steps  # None: one action each
            for p, e in zip(part.positions.tolist(), reply.error):
                errors[p] = e
            if reply.lost is not None:
                lost[part.positions] |= reply.lost
            if call.kind == "reset":
                ok = np.array([e is None for e in reply.error], bool)
                self.valid[ids[part.positions]] = ok
        return StepResult(
            ids, success, errors, self._obs, None if call.kind == "reset" else steps, lost if lost.any() else None
        )

    def _fetch(self, call: _Call) -> list[ShardReply | str | None]:
        """The replies of a call's parts; the env's error text when it raised; None for lost parts."""
        out: list[ShardReply | str | None] = []
        for part in call.parts:
            if part.lost is None:
                shard = self.shards[part.shard]
                while part.generation == shard.generation and not shard.link.has(part.seq) and shard.dead is None:
                    left = call.deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._wait_links([shard], min(left, _DEATH_CHECK_S))
                if part.generation != shard.generation:
                    part.lost = f"{shard.where} was replaced while this call ran"
                elif shard.link.has(part.seq):
                    status, payload = shard.link.take(part.seq)
                    if status == b"ok":
                        out.append(unpack_reply(payload, self._dims, self.spec.cameras))
                        continue
                    if status == b"raised":
                        out.append(payload.decode(errors="replace"))
                        continue
                    part.lost = f"{shard.where} failed: {payload.decode(errors='replace')[:500]}"
                elif shard.dead is not None:
                    part.lost = f"{shard.where} died: {shard.dead}"
                else:
                    part.lost = f"{shard.where} timed out: no answer within {self.shard_timeout_s:g} s"
                self._replace(part.shard, part.generation, part.lost)
            out.append(None)
        return out

    def _wait_links(self, shards: Sequence[_Shard], timeout: float) -> None:
        """Block until a reply arrives on one of ``shards`` or ``timeout`` passed; notes deaths."""
        poller = zmq.Poller()
        for shard in shards:
            poller.register(shard.link.sock, zmq.POLLIN)
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if poller.poll(max(0, int(1000 * min(left, _DEATH_CHECK_S)))):
                return
            if self._check_deaths(shards) or left <= _DEATH_CHECK_S:
                return

    def _check_deaths(self, shards: Sequence[_Shard]) -> bool:
        """Mark shards whose actor died (their ``watch`` call ended); True if one did."""
        live = [s for s in shards if s.dead is None]
        if not live:
            return True
        done, _ = self._ray.wait([s.watch for s in live], num_returns=len(live), timeout=0)
        if not done:
            return False
        ended = set(done)
        for shard in live:
            if shard.watch in ended:
                try:
                    self._ray.get(shard.watch)
                    shard.dead = "it stopped"
                except self._ray.exceptions.RayError as exc:
                    shard.dead = _first_line(exc)
        return True

    def _absorb(self, part: _Part, reply: ShardReply, ids: np.ndarray) -> None:
        """Copy a reply's rows into the coordinator's observation."""
        rows = ids[part.positions]
        for group, values in reply.state.items():
            self._obs.state[group][rows] = values
        if len(reply.image_rows):
            target = rows[reply.image_rows]
            for cam, frames in reply.images.items():
                self._obs.images[cam][target] = frames
        if reply.instructions is not None:
            for slot, text in zip(rows.tolist(), reply.instructions):
                self._obs.instruction[slot] = text
        self.shards[part.shard].renders = reply.renders

    # -- VectorEnv -------------------------------------------------------------------------------
    def reset(self, env_ids: Sequence[int], episodes: Sequence[EpisodeSpec], render: np.ndarray) -> StepResult:
        return self.reset_wait(self.reset_async(env_ids, episodes, render))

    def reset_async(self, env_ids: Sequence[int], episodes: Sequence[EpisodeSpec], render: np.ndarray) -> StepHandle:
        ids = np.asarray(env_ids, np.int64)
        eps, rnd = list(episodes), np.asarray(render, bool)

        def pack(part: _Part) -> bytes:
            episodes = [eps[p] for p in part.positions.tolist()]
            return pack_call("reset", part.local.tolist(), rnd[part.positions], episodes=episodes)

        return self._send("reset", ids, pack, check_valid=False)

    def reset_wait(self, handle: StepHandle) -> StepResult:
        return self._collect(handle)

    def step_chunk(
        self, env_ids: Sequence[int], actions: np.ndarray, counts: np.ndarray, render: np.ndarray
    ) -> StepResult:
        return self.step_wait(self.step_async(env_ids, actions, counts, render))

    def step_async(
        self, env_ids: Sequence[int], actions: np.ndarray, counts: np.ndarray, render: np.ndarray
    ) -> StepHandle:
        ids = np.asarray(env_ids, np.int64)
        acts, cnt, rnd = np.asarray(actions, np.float32), np.asarray(counts, np.int64), np.asarray(render, bool)

        def pack(part: _Part) -> bytes:
            p = part.positions
            m = int(cnt[p].max()) if len(p) else 0  # send only the actions the shard will execute
            return pack_call("step", part.local.tolist(), rnd[p], acts[p, :m], cnt[p])

        return self._send("step", ids, pack, check_valid=True)

    def step_wait(self, handle: StepHandle) -> StepResult:
        return self._collect(handle)

    def _pending(self, handle: StepHandle) -> list[_Part]:
        """Parts of ``handle`` still waiting for their reply (not lost, shard alive and unchanged)."""
        call: _Call = handle.state  # type: ignore[assignment]
        out = []
        for p in call.parts:
            if p.lost is not None:
                continue
            shard = self.shards[p.shard]
            if shard.generation == p.generation and shard.dead is None and not shard.link.has(p.seq):
                out.append(p)
        return out

    def ready(self, handle: StepHandle) -> bool:
        return not self._pending(handle) or time.monotonic() >= handle.state.deadline  # type: ignore[attr-defined]

    def wait(self, handles: Sequence[StepHandle], timeout: float | None) -> None:
        pending = [self._pending(h) for h in handles]
        if not all(pending):
            return  # one is complete already
        shards = list({p.shard: self.shards[p.shard] for parts in pending for p in parts}.values())
        left = max(0.0, min(h.state.deadline for h in handles) - time.monotonic())  # type: ignore[attr-defined]
        self._wait_links(shards, left if timeout is None else min(timeout, left))

    def observe(self, env_ids: Sequence[int], render: np.ndarray) -> Observation:
        ids = np.asarray(env_ids, np.int64)
        rnd = np.asarray(render, bool)
        rows = ids[rnd]
        if len(rows):

            def pack(part: _Part) -> bytes:
                return pack_call("observe", part.local.tolist(), np.ones(len(part.local), bool))

            handle = self._send("observe", rows, pack, check_valid=True)
            self._collect(handle)  # a lost shard leaves its slots invalid: their next step is lost
        return self._obs

    def render_count(self) -> int:
        return sum(s.renders_before + s.renders for s in self.shards)

    def shard_of(self, slot: int) -> str | None:
        return self.shards[slot // self.per].where

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        stops = []
        for shard in self.shards:
            try:
                stops.append(shard.actor.stop.remote())
            except Exception:  # noqa: BLE001 - a dead actor has nothing to stop
                pass
        try:
            self._ray.wait(stops, num_returns=len(stops), timeout=30.0)
        except Exception:  # noqa: BLE001
            pass
        for shard in self.shards:
            shard.link.close()
            self._kill(shard.actor)
        self._ctx.term()
        if self._runtime is not None:
            self._runtime.__exit__(None, None, None)

    def __getstate__(self) -> Any:
        raise TypeError("a RayVectorEnv holds Ray actors; build it where the run is coordinated")


def _max_reply_bytes(spec: Any, per: int) -> int:
    """The largest reply a shard of ``per`` slots can send (all images and state), with room to spare."""
    images = sum(h * w * 3 for h, w in spec.cameras.values())
    state = sum(len(el) for el in spec.state_groups.values()) * 4
    return per * (images + state) + 16 * 1024 * 1024


def _where(index: int, info: Mapping[str, Any], generation: int = 0) -> str:
    gen = f" (replacement {generation})" if generation else ""
    node = str(info.get("node_id") or "")[:12]
    return f"ray shard {index}{gen} on {info.get('host', '?')} node {node or '?'} pid {info.get('pid', '?')}"
