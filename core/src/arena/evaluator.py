"""The evaluation loop: pipelined stages over an :class:`~arena.ledger.EpisodeLedger`.

Accounting lives in the ledger: episodes are fixed up front, ``episodes``
per task, each with a seed derived from (run seed, task name, episode
index), and each is recorded exactly once, when it ends. Outcomes depend on
the seed alone, never on ``num_envs``, the stage count or which slot ran it.

The loop splits the slots into ``stages`` groups (contiguous blocks). Each
group cycles through: policy query in flight (``Policy.submit``) -> chunk
pushed into the scheduler -> env chunk step (``VectorEnv.step_async`` /
``step_wait``: every action a slot can execute before its next query, in one
call) -> episode ends and restarts -> next query. Groups take turns, so while
one group's query is in flight (a remote server), the other groups step; and
while one group's env step runs in worker processes, the policy computes for
another. With one stage this is the plain synchronous loop.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future

import attrs
import numpy as np

from arena.contract import ActionChunk, EnvSpec, Observation, Task
from arena.env import EpisodeSpec, StepHandle, StepResult, VectorEnv
from arena.errors import ConfigError, PolicyError
from arena.ledger import EpisodeLedger
from arena.policy import Policy
from arena.results import EpisodeRecord
from arena.schedulers import ActionScheduler

log = logging.getLogger(__name__)

__all__ = ["episode_seed", "plan_episodes", "Evaluator", "FrameSink", "check_stages"]

#: how long each wait lasts when both env steps and policy queries are in flight
_POLL_S = 0.0005


def episode_seed(seed: int, task: str, episode_index: int) -> int:
    """The seed of episode ``episode_index`` of ``task``: stable across suites and num_envs."""
    state = np.random.SeedSequence([seed, zlib.crc32(task.encode()), episode_index]).generate_state(1)
    return int(state[0])


def plan_episodes(tasks: Iterable[Task | str], episodes: int, seed: int) -> list[EpisodeSpec]:
    """All episodes of a run, task by task (the ledger hands them out task-affinely)."""
    names = [t.name if isinstance(t, Task) else t for t in tasks]
    return [EpisodeSpec(name, i, episode_seed(seed, name, i)) for name in names for i in range(episodes)]


def check_stages(stages: int, num_envs: int, scheduler: ActionScheduler) -> None:
    """Refuse stage counts the loop cannot honour, naming the flag."""
    if isinstance(stages, bool) or not isinstance(stages, int) or stages < 1:
        raise ConfigError(f"--stages: expected an integer >= 1, got {stages!r}")
    if stages > num_envs:
        raise ConfigError(f"--stages: expected at most --num-envs ({num_envs}) groups of slots, got {stages}")
    if stages > 1 and scheduler.couples_slots:
        raise ConfigError(
            f"--stages {stages}: the {type(scheduler).__name__} couples all slots in one query; "
            "it runs with --stages 1 only"
        )


class FrameSink:
    """Receives rendered frames of chosen episodes (video recording plugs in here)."""

    def wants(self, episode: EpisodeSpec) -> bool:
        return False

    def frame(self, slot: int, episode: EpisodeSpec, observation: Observation) -> None:
        """Called after reset and after each step of a wanted episode, with fresh images in row ``slot``."""

    def end(self, slot: int, episode: EpisodeSpec, record: EpisodeRecord) -> None:
        """The episode ended."""

    def discard(self, slot: int, episode: EpisodeSpec) -> None:
        """The episode was lost to an infrastructure fault and will run again: drop its frames."""


@attrs.define(eq=False)
class _Group:
    """One pipeline stage: a block of slots and what it has in flight."""

    ids: np.ndarray
    mask: np.ndarray
    whole: bool = False  # the group is every slot
    active_ids: np.ndarray | None = None
    version: int = -1
    query: Future | None = None
    query_ids: np.ndarray | None = None
    query_t0: float = 0.0
    step: StepHandle | None = None
    step_t0: float = 0.0


#: the handle of a step already done synchronously (its result is in Evaluator._direct)
_STEPPED = StepHandle(np.zeros(0, np.int64))


@attrs.define(eq=False)
class _Reset:
    """Episode starts in flight (worker processes build scenes while other slots step)."""

    handle: StepHandle
    slots: list[int]
    episodes: list[EpisodeSpec]
    render: np.ndarray
    t0: float


class Evaluator:
    """Runs planned episodes of one env with one policy and one scheduler, in ``stages`` groups."""

    def __init__(
        self,
        env: VectorEnv,
        policy: Policy,
        scheduler: ActionScheduler,
        episodes: Sequence[EpisodeSpec],
        max_steps: int,
        on_episode: Callable[[EpisodeRecord], None],
        policy_uses_cameras: bool = True,
        frames: FrameSink | None = None,
        stages: int = 1,
        episode_retries: int = 2,
    ) -> None:
        n = env.num_envs
        check_stages(stages, n, scheduler)
        self.env = env
        self.spec: EnvSpec = env.spec
        self.policy = policy
        self.scheduler = scheduler
        self.max_steps = max_steps
        self.on_episode = on_episode
        self.render_for_policy = policy_uses_cameras and bool(self.spec.cameras)
        self.frames = frames or FrameSink()
        self.n = n
        self.ledger = EpisodeLedger(
            episodes, n, self._recorded, retries=episode_retries, wants_frames=self.frames.wants, where=env.shard_of
        )
        self.groups = [
            _Group(ids, np.isin(np.arange(n), ids), whole=stages == 1) for ids in np.array_split(np.arange(n), stages)
        ]
        self._no_render = np.zeros(n, bool)
        self.fresh = np.zeros(n, bool)  # images of this slot are current
        self.observation: Observation | None = None
        self.total_steps = 0
        # worker processes: steps and episode starts run while this process does other work
        self._async = bool(env.async_steps)
        # a scheduler coupling all slots (synced) makes hold steps depend on when a start completes
        self._async_resets = self._async and not scheduler.couples_slots
        self.starting = np.zeros(n, bool)  # slots whose reset is in flight
        self._resets: list[_Reset] = []
        self._starts = 0  # bumped when a slot starts or stops starting (cache key of _active_ids)
        self._validated = False
        self._direct: StepResult | None = None  # the result of a synchronous step (no handle)
        self._direct_ids = np.zeros(0, np.int64)
        self._requery = False  # set once a policy lost episodes: filter slots that wait for a query

    @property
    def rebuilds(self) -> int:
        """Episode starts that changed a slot's task (scene builds), as the ledger counts them."""
        return self.ledger.scene_builds

    # -- episode bookkeeping -------------------------------------------------------------------
    def _recorded(self, slot: int, ep: EpisodeSpec, record: EpisodeRecord, recording: bool) -> None:
        if recording:
            self.frames.end(slot, ep, record)
        self.on_episode(record)
        self.policy.episode_end([slot], [record])

    def _finish(self, slot: int, success: bool, reason: str | None, error: bool) -> None:
        self.ledger.finish(slot, success, reason, error)

    def _lose(self, slot: int, cause: str) -> None:
        ledger = self.ledger
        ep = ledger.episode[slot]
        log.warning("episode %s lost (%s)", ep, cause)
        if ledger.recording[slot] and ep is not None:
            self.frames.discard(slot, ep)
        ledger.lose(slot, cause)

    def _start(self, slots: list[int]) -> None:
        """Give free ``slots`` their next episodes (a failed reset records or re-queues its episode)."""
        ledger = self.ledger
        while slots:
            eps: list[EpisodeSpec] = []
            taken: list[int] = []
            for s in slots:
                ep = ledger.take(s)
                if ep is None:  # nothing left, or waiting for a slot that holds the scene is cheaper
                    continue
                eps.append(ep)
                taken.append(s)
            if not taken:
                return
            ids = np.asarray(taken, np.int64)
            self.scheduler.reset(ids)
            self.policy.reset(ids, [ep.seed for ep in eps])
            render = ledger.recording[ids].copy()
            if self.render_for_policy:
                render |= self.scheduler.need_mask(ledger.active)[ids]
            t0 = time.perf_counter()
            if self._async_resets:
                try:
                    handle = self.env.reset_async(ids, eps, render)
                except Exception as exc:  # noqa: BLE001 - an env failure ends these episodes, not the run
                    slots = self._started(taken, eps, render, self._reset_failed(ids, exc), t0)
                    continue
                self.starting[ids] = True
                self._starts += 1
                self._resets.append(_Reset(handle, taken, eps, render, t0))
                return
            try:
                res = self.env.reset(ids, eps, render)
            except Exception as exc:  # noqa: BLE001 - an env failure ends these episodes, not the run
                res = self._reset_failed(ids, exc)
            slots = self._started(taken, eps, render, res, t0)

    def _reset_failed(self, ids: np.ndarray, exc: BaseException) -> StepResult:
        log.warning("env reset failed for slots %s: %s", ids.tolist(), exc)
        return self._failed(ids, exc)

    def _collect_reset(self, r: _Reset) -> None:
        self._resets.remove(r)
        ids = np.asarray(r.slots, np.int64)
        try:
            res = self.env.reset_wait(r.handle)
        except Exception as exc:  # noqa: BLE001
            res = self._reset_failed(ids, exc)
        self.starting[ids] = False
        self._starts += 1
        again = self._started(r.slots, r.episodes, r.render, res, r.t0)
        if again:
            self._start(again)

    def _poll_resets(self) -> bool:
        done = [r for r in self._resets if self.env.ready(r.handle)]
        for r in done:
            self._collect_reset(r)
        return bool(done)

    def _started(
        self, slots: list[int], eps: list[EpisodeSpec], render: np.ndarray, res: StepResult, t0: float
    ) -> list[int]:
        """Book the resets of ``slots``; returns the slots whose episode failed to start (to start again)."""
        ledger = self.ledger
        dt = time.perf_counter() - t0
        if res.observation is not None:
            self.observation = res.observation
            if not self._validated:
                # once, cheaply: a broken env adapter fails here, naming the field, not inside a policy
                self._validated = True
                self.observation.validate(self.spec)
        self.fresh[np.asarray(slots, np.int64)] = render
        again = []
        for k, s in enumerate(slots):
            ledger.env_time[s] += dt
            err = res.error[k]
            if err is None:
                ledger.start_took(s, dt)
            if err is not None:
                if res.lost is not None and res.lost[k]:
                    self._lose(s, err)
                else:
                    self._finish(s, False, f"env_error: reset failed: {err}", True)
                again.append(s)
            elif ledger.recording[s]:
                self.frames.frame(s, eps[k], self.observation)  # type: ignore[arg-type]
        return again

    def _failed(self, ids: np.ndarray, exc: BaseException) -> StepResult:
        return StepResult(ids, np.zeros(len(ids), bool), [f"{type(exc).__name__}: {exc}"] * len(ids), self.observation)  # type: ignore[arg-type]

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> None:
        ledger = self.ledger
        for g in self.groups:
            self._start(g.ids.tolist())
        try:
            while not ledger.done:
                progressed = self._poll_resets() if self._resets else False
                for g in self.groups:
                    if self._ready(g):
                        self._turn(g)
                        progressed = True
                if not progressed:
                    self._wait_any()
        finally:
            self._drain()
        if ledger.unrecorded():  # the ledger's rule, checked where a loop bug would show
            raise RuntimeError(f"evaluator: episodes never recorded: {ledger.unrecorded()}")

    def _wait_any(self) -> None:
        """Nothing can go on without waiting: block until a query, a step or a start completes."""
        handles = [r.handle for r in self._resets] + [g.step for g in self.groups if g.step is not None]
        queries = [g.query for g in self.groups if g.query is not None]
        if not handles and not queries:
            raise RuntimeError(f"evaluator: {self.ledger.pending} episodes left but no slot can run them")
        if not queries:
            self.env.wait(handles, None)
        elif not handles:
            concurrent.futures.wait(queries, return_when=concurrent.futures.FIRST_COMPLETED)
        else:  # both kinds in flight: alternate short waits on each
            self.env.wait(handles, _POLL_S)
            concurrent.futures.wait(queries, timeout=_POLL_S, return_when=concurrent.futures.FIRST_COMPLETED)

    def _ready(self, g: _Group) -> bool:
        """Whether a turn of ``g`` can start without waiting (for its query or its workers)."""
        if g.step is not None:
            return not self._async or self.env.ready(g.step)
        if g.query is not None:
            return g.query.done()
        return bool(len(self._active_ids(g)))

    def _turn(self, g: _Group) -> None:
        """Advance group ``g`` by one stage of its cycle (query -> step -> query ...)."""
        if g.step is not None or g.query is None:
            if g.step is not None:
                self._collect_step(g)
            self._launch_query(g)
            if g.query is not None and not g.query.done():
                return  # the query is in flight: other groups step meanwhile
        if g.query is not None:
            self._collect_query(g)
        if not self._launch_step(g):
            return
        if not self._async:
            self._collect_step(g, self._direct)
            self._direct = None
            self._launch_query(g)

    def _drain(self) -> None:
        """Collect whatever is still in flight (an error stopped the run), so nothing runs on."""
        for r in list(self._resets):
            try:
                self.env.reset_wait(r.handle)
            except Exception:  # noqa: BLE001 - the run already failed; that error wins
                log.debug("collecting an outstanding reset failed", exc_info=True)
        self._resets.clear()
        for g in self.groups:
            if g.step is not None:
                try:
                    self.env.step_wait(g.step)
                except Exception:  # noqa: BLE001 - the run already failed; that error wins
                    log.debug("collecting an outstanding step failed", exc_info=True)
                g.step = None
            if g.query is not None:
                g.query.cancel()
                g.query = None

    def _runnable(self) -> np.ndarray:
        """Slots running an episode whose start is not in flight."""
        return self.ledger.active & ~self.starting if self._resets else self.ledger.active

    def _active_ids(self, g: _Group) -> np.ndarray:
        """The group's runnable slots, cached until a slot starts, frees or finishes starting."""
        key = self.ledger.version + (self._starts << 32)
        if g.version != key or g.active_ids is None:
            runnable = self._runnable()
            g.active_ids = np.flatnonzero(runnable) if g.whole else g.ids[runnable[g.ids]]
            g.version = key
        return g.active_ids

    def _launch_step(self, g: _Group) -> bool:
        """Start the chunk step of the group's slots that hold actions; False if none does."""
        ledger = self.ledger
        ids = self._active_ids(g)
        if self._async_resets or self._requery:  # a slot (re)started after the last query waits for its chunk
            ids = ids[~self.scheduler.need_mask(self._runnable())[ids]]
        if not len(ids):
            return False
        steps = ledger.steps[ids]
        limit = self.max_steps - steps
        recording = ledger.recording[ids] if ledger.n_recording else self._no_render[: len(ids)]
        if ledger.n_recording:
            limit = np.where(recording, 1, limit)  # a video gets every frame
        actions, counts = self.scheduler.pop_chunk(ids, limit)
        if self.render_for_policy:
            # render after the chunk only where the policy reads the next image; slots reaching
            # the step limit end before anyone reads it
            render = self.scheduler.need_mask(self._runnable())[ids] & (steps + counts < self.max_steps)
            render |= recording
        else:
            render = recording
        g.step_t0 = time.perf_counter()
        if self._async:
            g.step = self.env.step_async(ids, actions, counts, render)
        else:  # nothing to overlap with: step now, without a handle
            g.step = _STEPPED
            self._direct_ids = ids
            try:
                self._direct = self.env.step_chunk(ids, actions, counts, render)
            except Exception as exc:  # noqa: BLE001 - an env failure ends these episodes, not the run
                log.warning("env step failed for slots %s: %s", ids.tolist(), exc)
                self._direct = self._failed(ids, exc)
                self._direct.steps = np.ones(len(ids), np.int64)
        if self.render_for_policy:
            self.fresh[ids] = render
        return True

    def _collect_step(self, g: _Group, direct: StepResult | None = None) -> None:
        handle, g.step = g.step, None
        assert handle is not None
        if direct is not None:
            ids, res = self._direct_ids, direct
        else:
            ids = handle.env_ids
            try:
                res = self.env.step_wait(handle)
            except Exception as exc:  # noqa: BLE001 - an env failure ends these episodes, not the run
                log.warning("env step failed for slots %s: %s", ids.tolist(), exc)
                res = self._failed(ids, exc)
                res.steps = np.ones(len(ids), np.int64)
        ledger = self.ledger
        if res.observation is not None:
            self.observation = res.observation
        errors = res.error
        if len(ids) == 1:  # one slot: scalar bookkeeping, and nothing more unless its episode ended
            s = int(ids[0])
            ledger.env_time[s] += time.perf_counter() - g.step_t0
            n_exec = 1 if res.steps is None else int(res.steps[0])
            ledger.steps[s] += n_exec
            self.total_steps += n_exec
            if not ledger.n_recording and errors[0] is None and not res.success[0] and ledger.steps[s] < self.max_steps:
                return
            steps = ledger.steps[ids]
        else:
            ledger.env_time[ids] += time.perf_counter() - g.step_t0
            executed = np.ones(len(ids), np.int64) if res.steps is None else np.asarray(res.steps, np.int64)
            steps = ledger.steps[ids] + executed
            ledger.steps[ids] = steps
            self.total_steps += int(executed.sum())
        if ledger.n_recording and ledger.recording[ids].any():
            for s in ids[ledger.recording[ids]].tolist():
                ep = ledger.episode[s]
                if ep is not None:
                    self.frames.frame(s, ep, self.observation)  # type: ignore[arg-type]
        over = steps >= self.max_steps
        if not (res.success.any() or over.any() or errors.count(None) != len(errors)):
            return
        lost = res.lost
        ended = []
        for k, s in enumerate(ids.tolist()):
            if errors[k] is not None:
                if lost is not None and lost[k]:
                    self._lose(s, errors[k])
                else:
                    self._finish(s, False, f"env_error: {errors[k]}", True)
            elif res.success[k]:
                self._finish(s, True, None, False)
            elif over[k]:
                self._finish(s, False, "max_steps", False)
            else:
                continue
            ended.append(s)
        self._start(ended)

    def _launch_query(self, g: _Group) -> None:
        need = self.scheduler.need_mask(self._runnable())
        if not g.whole:
            need &= g.mask
        need_ids = np.flatnonzero(need)
        if not len(need_ids):
            return
        if self.render_for_policy:
            stale = need_ids[~self.fresh[need_ids]]
            if len(stale):
                self.observation = self.env.observe(stale, np.ones(len(stale), bool))
                self.fresh[stale] = True
        assert self.observation is not None
        g.query_ids = need_ids
        g.query_t0 = time.perf_counter()
        g.query = self.policy.submit(self.observation, need)

    def _drop_lost(self, chunk: ActionChunk, need_ids: np.ndarray, dt: float) -> np.ndarray:
        """Lose the episodes the policy could not go on with and start them again; the ids left."""
        asked = set(need_ids.tolist())
        lost = np.asarray([int(i) for i in chunk.lost if int(i) in asked], np.int64)
        for s in lost.tolist():
            self.ledger.infer_time[s] += dt
            self._lose(s, f"policy: {chunk.lost[s]}")
        self._requery = True  # restarted slots hold no actions until their next query
        self._start(lost.tolist())
        return need_ids[~np.isin(need_ids, lost)]

    def _collect_query(self, g: _Group) -> None:
        future, g.query = g.query, None
        assert future is not None and g.query_ids is not None
        need_ids = g.query_ids
        chunk = future.result()
        dt = time.perf_counter() - g.query_t0
        if not isinstance(chunk, ActionChunk):
            raise PolicyError(
                f"policy {type(self.policy).__name__}.infer returned {type(chunk).__name__}, expected an arena.ActionChunk"
            )
        got = chunk.env_ids
        if got.shape != need_ids.shape or not np.array_equal(got, need_ids):
            raise PolicyError(
                f"policy returned actions for env ids {got.tolist()}, expected exactly the masked ids {need_ids.tolist()}"
            )
        ledger = self.ledger
        if chunk.lost:
            need_ids = self._drop_lost(chunk, need_ids, dt)
            if not len(need_ids):
                return
            chunk = ActionChunk(chunk.numpy()[np.isin(chunk.env_ids, need_ids)], need_ids)
        self.scheduler.push(chunk.numpy(), need_ids)
        if len(need_ids) == 1:
            i = int(need_ids[0])
            ledger.infer_time[i] += dt
            ledger.inferences[i] += 1
        else:
            ledger.infer_time[need_ids] += dt
            ledger.inferences[need_ids] += 1
