"""The vectorized evaluation loop with exact episode accounting.

Accounting rule: the episodes to run are fixed up front, ``episodes`` per
task, each with a seed derived from (run seed, task name, episode index).
Free env slots take the next planned episode in order; every planned episode
runs to its end and is counted exactly once, when it ends. No episode beyond
the plan is ever started, so nothing is dropped and nothing biases the
result toward short episodes, and outcomes do not depend on ``num_envs``.

The loop talks to the env in slot subsets (``step(ids, ...)``), so a later
pipelined loop can step one group of slots while a policy query for another
group is in flight.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from arena.contract import ActionChunk, EnvSpec, Observation, Task
from arena.env import EpisodeSpec, StepResult, VectorEnv
from arena.errors import PolicyError
from arena.policy import Policy
from arena.results import EpisodeRecord
from arena.schedulers import ActionScheduler

log = logging.getLogger(__name__)

__all__ = ["episode_seed", "plan_episodes", "Evaluator", "FrameSink"]


def episode_seed(seed: int, task: str, episode_index: int) -> int:
    """The seed of episode ``episode_index`` of ``task``: stable across suites and num_envs."""
    state = np.random.SeedSequence([seed, zlib.crc32(task.encode()), episode_index]).generate_state(1)
    return int(state[0])


def plan_episodes(tasks: Iterable[Task | str], episodes: int, seed: int) -> list[EpisodeSpec]:
    """All episodes of a run, task by task, in the order slots take them."""
    names = [t.name if isinstance(t, Task) else t for t in tasks]
    return [EpisodeSpec(name, i, episode_seed(seed, name, i)) for name in names for i in range(episodes)]


class FrameSink:
    """Receives rendered frames of chosen episodes (video recording plugs in here)."""

    def wants(self, episode: EpisodeSpec) -> bool:
        return False

    def frame(self, slot: int, episode: EpisodeSpec, observation: Observation) -> None:
        """Called after reset and after each step of a wanted episode, with fresh images in row ``slot``."""

    def end(self, slot: int, episode: EpisodeSpec, record: EpisodeRecord) -> None:
        """The episode ended."""


class Evaluator:
    """Runs planned episodes of one env with one policy and one scheduler."""

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
    ) -> None:
        self.env = env
        self.spec: EnvSpec = env.spec
        self.policy = policy
        self.scheduler = scheduler
        self.queue: deque[EpisodeSpec] = deque(episodes)
        self.max_steps = max_steps
        self.on_episode = on_episode
        self.render_for_policy = policy_uses_cameras and bool(self.spec.cameras)
        self.frames = frames or FrameSink()
        n = env.num_envs
        self.n = n
        self.slot_episode: list[EpisodeSpec | None] = [None] * n
        self.recording = np.zeros(n, bool)
        self.active = np.zeros(n, bool)
        self.fresh = np.zeros(n, bool)  # images of this slot are current
        self.steps = np.zeros(n, np.int64)
        self.env_time = np.zeros(n)
        self.infer_time = np.zeros(n)
        self.inferences = np.zeros(n, np.int64)
        self.started = np.zeros(n)
        self.observation: Observation | None = None
        self.total_steps = 0
        # cached so the per-step path does few numpy calls (its overhead is measured by bench/loop_overhead.py)
        self.active_ids = np.zeros(0, np.int64)
        self.n_recording = 0
        self._no_render = np.zeros(n, bool)

    # -- episode bookkeeping -------------------------------------------------------------------
    def _finish(self, slot: int, success: bool, reason: str | None, error: bool) -> None:
        ep = self.slot_episode[slot]
        assert ep is not None
        record = EpisodeRecord(
            task=ep.task,
            episode_index=ep.index,
            seed=ep.seed,
            success=success,
            length=int(self.steps[slot]),
            failure_reason=reason,
            error=error,
            timings={
                "wall_s": round(time.perf_counter() - self.started[slot], 6),
                "env_s": round(float(self.env_time[slot]), 6),
                "infer_s": round(float(self.infer_time[slot]), 6),
                "inferences": int(self.inferences[slot]),
            },
            env_slot=slot,
        )
        if self.recording[slot]:
            self.frames.end(slot, ep, record)
        self.slot_episode[slot] = None
        self.active[slot] = False
        self.recording[slot] = False
        self._refresh()
        self.on_episode(record)

    def _refresh(self) -> None:
        self.active_ids = np.flatnonzero(self.active)
        self.n_recording = int(self.recording.sum())

    def _start(self, slots: list[int]) -> None:
        """Give free ``slots`` their next planned episodes (failed resets consume an episode)."""
        while slots and self.queue:
            slots = slots[: len(self.queue)]
            eps = [self.queue.popleft() for _ in slots]
            ids = np.asarray(slots, np.int64)
            for s, ep in zip(slots, eps):
                self.slot_episode[s] = ep
                self.active[s] = True
                self.steps[s] = 0
                self.env_time[s] = 0.0
                self.infer_time[s] = 0.0
                self.inferences[s] = 0
                self.started[s] = time.perf_counter()
                self.recording[s] = self.frames.wants(ep)
            self._refresh()
            self.scheduler.reset(ids)
            self.policy.reset(ids, [ep.seed for ep in eps])
            render = self.recording[ids].copy()
            if self.render_for_policy:
                render |= self.scheduler.need_mask(self.active)[ids]
            t0 = time.perf_counter()
            try:
                res = self.env.reset(ids, eps, render)
            except Exception as exc:  # noqa: BLE001 - an env failure ends these episodes, not the run
                log.warning("env reset failed for slots %s: %s", slots, exc)
                res = StepResult(
                    ids, np.zeros(len(ids), bool), [f"{type(exc).__name__}: {exc}"] * len(ids), self.observation
                )  # type: ignore[arg-type]
            dt = time.perf_counter() - t0
            if res.observation is not None:
                self.observation = res.observation
            self.fresh[ids] = render
            failed = []
            for k, s in enumerate(slots):
                self.env_time[s] += dt
                err = res.error[k]
                if err is not None:
                    self._finish(s, False, f"env_error: reset failed: {err}", True)
                    failed.append(s)
                elif self.recording[s]:
                    self.frames.frame(s, eps[k], self.observation)  # type: ignore[arg-type]
            slots = failed

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> None:
        self._start(list(range(self.n)))
        if self.observation is not None:
            # once, cheaply: a broken env adapter fails here, naming the field, not inside a policy
            self.observation.validate(self.spec)
        scheduler, env = self.scheduler, self.env
        active = self.active
        render_for_policy, max_steps = self.render_for_policy, self.max_steps
        while len(self.active_ids):
            need = scheduler.need_mask(active)
            if need.any():
                self._query(need)
            ids = self.active_ids
            actions = scheduler.pop(ids)
            if render_for_policy:
                # slots on their last allowed step end before anyone reads the next image
                render = scheduler.need_mask(active)[ids] & (self.steps[ids] + 1 < max_steps)
                if self.n_recording:
                    render |= self.recording[ids]
            elif self.n_recording:
                render = self.recording[ids]
            else:
                render = self._no_render[: len(ids)]
            t0 = time.perf_counter()
            try:
                res = env.step(ids, actions, render)
            except Exception as exc:  # noqa: BLE001
                log.warning("env step failed for slots %s: %s", ids.tolist(), exc)
                res = StepResult(
                    ids, np.zeros(len(ids), bool), [f"{type(exc).__name__}: {exc}"] * len(ids), self.observation
                )  # type: ignore[arg-type]
            self.env_time[ids] += time.perf_counter() - t0
            if res.observation is not None:
                self.observation = res.observation
            if render_for_policy:
                self.fresh[ids] = render
            steps = self.steps[ids] + 1
            self.steps[ids] = steps
            self.total_steps += len(ids)
            over = steps >= max_steps
            errors = res.error
            if self.n_recording:
                self._frames(ids)
            if not (res.success.any() or over.any() or errors.count(None) != len(errors)):
                continue
            ended = []
            for k, s in enumerate(ids.tolist()):
                if errors[k] is not None:
                    self._finish(s, False, f"env_error: {errors[k]}", True)
                elif res.success[k]:
                    self._finish(s, True, None, False)
                elif over[k]:
                    self._finish(s, False, "max_steps", False)
                else:
                    continue
                ended.append(s)
            self._start(ended)

    def _frames(self, ids: np.ndarray) -> None:
        for s in ids.tolist():
            ep = self.slot_episode[s]
            if self.recording[s] and ep is not None:
                self.frames.frame(s, ep, self.observation)  # type: ignore[arg-type]

    def _query(self, need: np.ndarray) -> None:
        need_ids = np.flatnonzero(need)
        if self.render_for_policy:
            stale = need_ids[~self.fresh[need_ids]]
            if len(stale):
                self.observation = self.env.observe(stale, np.ones(len(stale), bool))
                self.fresh[stale] = True
        assert self.observation is not None
        t0 = time.perf_counter()
        chunk = self.policy.infer(self.observation, need)
        dt = time.perf_counter() - t0
        if not isinstance(chunk, ActionChunk):
            raise PolicyError(
                f"policy {type(self.policy).__name__}.infer returned {type(chunk).__name__}, expected an arena.ActionChunk"
            )
        got = chunk.env_ids
        if got.shape != need_ids.shape or not (got == need_ids).all():
            raise PolicyError(
                f"policy returned actions for env ids {got.tolist()}, expected exactly the masked ids {need_ids.tolist()}"
            )
        self.scheduler.push(chunk.numpy(), need_ids)
        self.infer_time[need_ids] += dt
        self.inferences[need_ids] += 1
