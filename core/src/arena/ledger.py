"""The episode ledger: the plan, who runs what, and the rule "each planned episode is recorded once".

Every loop (synchronous, pipelined, spread over Ray shards) hands episodes
out and takes outcomes back through one :class:`EpisodeLedger`, so the
accounting rule is written and tested in one place:

* the episodes to run are fixed up front; nothing outside the plan starts;
* an episode is recorded exactly once, when it ends (success, failure, env
  error), through ``on_record``;
* an episode lost to an infrastructure fault (its worker died or hung) is
  NOT recorded: it goes back to the queue with its seed and runs again, at
  most ``retries`` more times, after which it is recorded as an error that
  names the cause.

Which episode a free slot takes is task-affine: one of the task its
simulator already holds when that task has episodes left (a same-task reset
is ~10x cheaper than building another scene), otherwise one of a task no
other slot holds, the one with the most episodes left. When only tasks that
other slots hold are left, the free slot takes one (building that scene)
unless, by the times measured so far, those slots would run what is left
sooner than it could build the scene and run one: then it idles, and they
run the episodes without a build. (Meta-World: a build costs more than a
short episode; LIBERO: an episode costs far more than a build.) The seed decides an
episode, so the choice changes wall time only, never outcomes.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence

import numpy as np

from arena.env import EpisodeSpec
from arena.results import EpisodeRecord

__all__ = ["EpisodeLedger", "LOST_PREFIX"]

#: failure_reason prefix of an episode whose retries after infrastructure losses ran out
LOST_PREFIX = "lost"


class EpisodeLedger:
    """Planned episodes, the slot each running one occupies, and their per-slot bookkeeping.

    The per-slot arrays (``steps``, ``env_time``, ``infer_time``,
    ``inferences``, ``recording``) are public so the loop updates them with
    vectorized numpy calls; everything that changes which episodes exist
    goes through :meth:`take`, :meth:`finish` and :meth:`lose`.
    """

    def __init__(
        self,
        episodes: Sequence[EpisodeSpec],
        num_slots: int,
        on_record: Callable[[int, EpisodeSpec, EpisodeRecord, bool], None],
        retries: int = 2,
        wants_frames: Callable[[EpisodeSpec], bool] | None = None,
        where: Callable[[int], str | None] | None = None,
    ) -> None:
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.num_slots = num_slots
        self.retries = retries
        self._on_record = on_record
        self._wants_frames = wants_frames
        self._where = where
        self._queues: dict[str, deque[EpisodeSpec]] = {}
        for ep in episodes:
            self._queues.setdefault(ep.task, deque()).append(ep)
        keys = [(ep.task, ep.index) for ep in episodes]
        if len(set(keys)) != len(keys):
            raise ValueError("the episode plan names an episode twice")
        self.planned = len(keys)
        self._open = set(keys)  # planned and not yet recorded
        self.attempts: dict[tuple[str, int], int] = {}
        self.pending = len(keys)
        self.episode: list[EpisodeSpec | None] = [None] * num_slots
        #: the task whose scene each slot's simulator last held (task affinity)
        self.slot_task: list[str | None] = [None] * num_slots
        self.active = np.zeros(num_slots, bool)
        self.recording = np.zeros(num_slots, bool)
        self.steps = np.zeros(num_slots, np.int64)
        self.env_time = np.zeros(num_slots)
        self.infer_time = np.zeros(num_slots)
        self.inferences = np.zeros(num_slots, np.int64)
        self.started = np.zeros(num_slots)
        #: whether each slot's episode started with a scene build, and how long its start took
        self.built = np.zeros(num_slots, bool)
        self.reset_s = np.zeros(num_slots)
        self._starts_s = {True: [0.0, 0], False: [0.0, 0]}  # built -> [seconds, count] of starts
        self._runs_s: dict[str, list[float]] = {}  # task -> [seconds, count] of episodes past their start
        self.recorded = 0
        self.lost = 0
        #: episode starts that changed the task of a slot's simulator (a scene build)
        self.scene_builds = 0
        #: slots recording frames, and a counter bumped whenever a slot starts or frees (loops cache on it)
        self.n_recording = 0
        self.version = 0

    # -- state ---------------------------------------------------------------------------------
    @property
    def running(self) -> int:
        return int(self.active.sum())

    @property
    def done(self) -> bool:
        return self.pending == 0 and not self.active.any()

    def left(self, task: str) -> int:
        """Episodes of ``task`` waiting to start."""
        q = self._queues.get(task)
        return len(q) if q else 0

    # -- handing out ---------------------------------------------------------------------------
    def _pick(self, slot: int) -> EpisodeSpec | None:
        held = self.slot_task[slot]
        q = self._queues.get(held) if held is not None else None
        if q:
            return q.popleft()
        holders: dict[str, list[int]] = {}
        for s in np.flatnonzero(self.active).tolist():
            task = self.slot_task[s]
            if s != slot and task is not None:
                holders.setdefault(task, []).append(s)
        best: tuple[float, str] | None = None
        for task, queue in self._queues.items():  # plan order breaks ties
            if queue:
                score = len(queue) / (len(holders.get(task, ())) + 1)  # unheld tasks first, then most left per slot
                if best is None or score > best[0]:
                    best = (score, task)
        if best is None:
            return None
        task = best[1]
        queue = self._queues[task]
        held_by = holders.get(task, [])
        if held_by and self._waiting_is_sooner(task, len(queue), held_by):
            return None
        return queue.popleft()

    def _waiting_is_sooner(self, task: str, left: int, held_by: list[int]) -> bool:
        """Whether the slots holding ``task`` finish its ``left`` episodes sooner than with this one's help.

        By the times measured so far: a scene build costs ``B`` more than a
        same-task start, an episode ``E``, the soonest holder frees in ``r``.
        Waiting ends after about ``r + ceil(left / holders) E``; helping after
        ``B + E`` at best. Nothing measured yet: help.
        """
        built, same = self._starts_s[True], self._starts_s[False]
        runs = self._runs_s.get(task) or self._runs_s.get("")  # this task's episodes, else all so far
        if not built[1] or not runs:
            return False
        build = built[0] / built[1] - (same[0] / same[1] if same[1] else 0.0)
        episode = runs[0] / runs[1]
        now = time.perf_counter()
        soonest = max(min(episode - (now - self.started[s] - self.reset_s[s]) for s in held_by), 0.0)
        rounds = -(-left // len(held_by))
        return soonest + rounds * episode <= build + episode

    def start_took(self, slot: int, seconds: float) -> None:
        """The start (reset) of ``slot``'s episode took ``seconds``: what scene builds cost, measured."""
        self.reset_s[slot] = seconds
        acc = self._starts_s[bool(self.built[slot])]
        acc[0] += seconds
        acc[1] += 1

    def take(self, slot: int) -> EpisodeSpec | None:
        """Start the next episode in free ``slot``.

        None when none is left, or when the slot should idle: the episodes
        left are of tasks other slots hold, which free before this one could
        build the scene (see the module's docstring). Those slots take them.
        """
        if self.active[slot]:
            raise RuntimeError(f"ledger: slot {slot} still runs {self.episode[slot]}")
        ep = self._pick(slot)
        if ep is None:
            return None
        self.pending -= 1
        key = (ep.task, ep.index)
        self.attempts[key] = self.attempts.get(key, 0) + 1
        self.episode[slot] = ep
        self.built[slot] = self.slot_task[slot] != ep.task
        self.scene_builds += int(self.built[slot])
        self.reset_s[slot] = 0.0
        self.slot_task[slot] = ep.task
        self.active[slot] = True
        self.steps[slot] = 0
        self.env_time[slot] = 0.0
        self.infer_time[slot] = 0.0
        self.inferences[slot] = 0
        self.started[slot] = time.perf_counter()
        self.recording[slot] = bool(self._wants_frames(ep)) if self._wants_frames else False
        self.n_recording += int(self.recording[slot])
        self.version += 1
        return ep

    # -- taking back -----------------------------------------------------------------------------
    def _release(self, slot: int) -> EpisodeSpec:
        ep = self.episode[slot]
        if ep is None or not self.active[slot]:
            raise RuntimeError(f"ledger: slot {slot} runs no episode")
        self.episode[slot] = None
        self.active[slot] = False
        self.n_recording -= int(self.recording[slot])
        self.recording[slot] = False
        self.version += 1
        return ep

    def finish(self, slot: int, success: bool, reason: str | None, error: bool) -> EpisodeRecord:
        """The episode in ``slot`` ended: record it (exactly once) and free the slot.

        ``on_record(slot, episode, record, recording)`` is called once the
        slot is free (so it may start the next episode).
        """
        return self._record(slot, success, reason, error, show_attempts=False)

    def _record(self, slot: int, success: bool, reason: str | None, error: bool, show_attempts: bool) -> EpisodeRecord:
        recording = bool(self.recording[slot])
        ep = self._release(slot)
        key = (ep.task, ep.index)
        if key not in self._open:
            raise RuntimeError(f"ledger: episode {key} was already recorded")
        self._open.discard(key)
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
            shard=self._where(slot) if self._where is not None else None,
        )
        if show_attempts or self.attempts.get(key, 1) > 1:
            record.timings["attempts"] = self.attempts.get(key, 1)
        self.recorded += 1
        if not error:
            for key in (ep.task, ""):  # "": every task
                acc = self._runs_s.setdefault(key, [0.0, 0])
                acc[0] += record.timings["wall_s"] - self.reset_s[slot]
                acc[1] += 1
        self._on_record(slot, ep, record, recording)
        return record

    def lose(self, slot: int, cause: str) -> EpisodeRecord | None:
        """The episode in ``slot`` was lost to an infrastructure fault (not the policy's, not the env's).

        It goes back to the front of its task's queue with its seed, unless it
        was already retried ``retries`` times: then it is recorded as an error
        naming ``cause`` and returned.
        """
        ep = self.episode[slot]
        self.lost += 1
        self.slot_task[slot] = None  # a replaced worker holds no scene
        attempts = self.attempts.get((ep.task, ep.index), 1) if ep is not None else 1
        if ep is not None and attempts > self.retries:
            reason = f"{LOST_PREFIX}: {cause} (after {attempts} attempts)"
            return self._record(slot, False, reason, True, show_attempts=True)
        ep = self._release(slot)
        self._queues.setdefault(ep.task, deque()).appendleft(ep)
        self.pending += 1
        return None

    def unrecorded(self) -> list[tuple[str, int]]:
        """Planned episodes not recorded yet (empty once the loop finished)."""
        return sorted(self._open)
