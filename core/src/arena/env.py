"""The env adapter interface: a batch of ``num_envs`` slots stepped by the evaluator.

It fits a pool of CPU MuJoCo processes (each slot one sim) and a GPU-batched
simulator (one process, N envs as tensors) alike: the evaluator only talks in
slot ids, and an adapter returns one batched :class:`Observation` for all slots.
See docs/envs.md for the Isaac Lab shape this is kept honest to.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import ClassVar

import attrs
import numpy as np

from arena.contract import EnvSpec, Observation

__all__ = ["EpisodeSpec", "StepResult", "StepHandle", "VectorEnv", "ChunkNativeEnv", "EnvFamily"]


@attrs.frozen
class EpisodeSpec:
    """Which episode a slot runs: task, index within the task, and its seed."""

    task: str
    index: int
    seed: int


@attrs.define
class StepResult:
    """Outcome of stepping slots ``env_ids`` (arrays aligned with ``env_ids``).

    ``success``: the env reports the task solved on this step (ends the episode).
    ``error``: a message when the slot's env failed (ends the episode as failed);
    None otherwise. ``observation`` covers ALL slots; only stepped rows changed.
    ``steps``: actions executed per row by :meth:`VectorEnv.step_chunk` (None:
    one each). ``lost``: rows whose simulator was lost to an infrastructure
    fault (worker died or hung and was replaced); their ``error`` says why.
    A lost episode is not recorded: the loop re-runs it with the same seed.
    """

    env_ids: np.ndarray
    success: np.ndarray
    error: list[str | None]
    observation: Observation
    steps: np.ndarray | None = None
    lost: np.ndarray | None = None


@attrs.define
class StepHandle:
    """A chunk step started by :meth:`VectorEnv.step_async`, collected by :meth:`VectorEnv.step_wait`.

    The default handle runs the step when waited on (``run``); asynchronous
    envs keep whatever they need to gather the replies.
    """

    env_ids: np.ndarray
    run: Callable[[], StepResult] | None = None
    state: object = None


class VectorEnv(abc.ABC):
    """N env slots. Slots are reset and stepped independently, by subsets.

    Stepping a subset lets the pipelined evaluator step one group of slots
    while a policy query for another group is in flight. Three levels, each
    with a default built on the one below, so an adapter implements only
    :meth:`reset` and :meth:`step` and overrides the others to go faster:

    * :meth:`step`: one action per slot;
    * :meth:`step_chunk`: up to ``counts[k]`` actions per slot in ONE call
      (a worker pool makes one round trip per chunk, not per action);
    * :meth:`step_async` / :meth:`step_wait` (and :meth:`reset_async` /
      :meth:`reset_wait`): start a call and collect it later, so other work
      overlaps it. ``async_steps`` says whether they really return before the
      simulators finish (worker processes); the loop then keeps other slots
      busy meanwhile and polls :meth:`ready`.
    """

    spec: EnvSpec
    num_envs: int
    async_steps: ClassVar[bool] = False

    @abc.abstractmethod
    def reset(self, env_ids: Sequence[int], episodes: Sequence[EpisodeSpec], render: np.ndarray) -> StepResult:
        """Start ``episodes`` in slots ``env_ids``.

        ``render`` (bool, aligned with env_ids) says which slots must render
        cameras. A slot whose reset failed has its ``error`` set (its episode is
        recorded as failed); ``success`` is all false.
        """

    @abc.abstractmethod
    def step(self, env_ids: Sequence[int], actions: np.ndarray, render: np.ndarray) -> StepResult:
        """Apply ``actions`` (len(env_ids), A) to slots ``env_ids``.

        Cameras are rendered only for rows where ``render`` is true: rendering
        costs 10-20x a physics step on CPU, and chunked execution needs images
        only on the steps whose observation the policy (or a video) will use.
        """

    def step_chunk(
        self, env_ids: Sequence[int], actions: np.ndarray, counts: np.ndarray, render: np.ndarray
    ) -> StepResult:
        """Execute ``actions[k, :counts[k]]`` (actions: (len(env_ids), m, A)) on slot ``env_ids[k]``.

        A slot stops at its first success or error (``steps`` says how many
        actions it executed). ``render[k]``: render the slot's cameras after
        its last action, unless it ended there. Outcomes equal ``counts[k]``
        calls of :meth:`step`; the default is exactly that loop.
        """
        ids = np.asarray(env_ids, np.int64)
        counts = np.asarray(counts, np.int64)
        if len(counts) and counts.min() == counts.max() == 1:
            return self.step(ids, actions[:, 0], render)  # one action each: the plain step, no bookkeeping
        n = len(ids)
        steps = np.zeros(n, np.int64)
        success = np.zeros(n, bool)
        errors: list[str | None] = [None] * n
        lost = np.zeros(n, bool)
        going = counts > 0
        observation = None
        j = 0
        while going.any():
            rows = np.flatnonzero(going)
            last = counts[rows] == j + 1
            res = self.step(ids[rows], actions[rows, j], np.asarray(render, bool)[rows] & last)
            observation = res.observation
            steps[rows] += 1 if res.steps is None else res.steps
            for k, row in enumerate(rows.tolist()):
                if res.error[k] is not None:
                    errors[row] = res.error[k]
                    lost[row] = res.lost is not None and bool(res.lost[k])
                    going[row] = False
                elif res.success[k]:
                    success[row] = True
                    going[row] = False
            going &= counts > j + 1
            j += 1
        if observation is None:
            raise ValueError("step_chunk: every count is 0, nothing to step")
        return StepResult(ids, success, errors, observation, steps, lost if lost.any() else None)

    def step_async(
        self, env_ids: Sequence[int], actions: np.ndarray, counts: np.ndarray, render: np.ndarray
    ) -> StepHandle:
        """Start :meth:`step_chunk` on ``env_ids``; :meth:`step_wait` collects it.

        Several handles on disjoint slot sets may be outstanding at once. The
        default defers the whole call to :meth:`step_wait`.
        """
        ids = np.asarray(env_ids, np.int64)
        return StepHandle(ids, lambda: self.step_chunk(ids, actions, counts, render))

    def step_wait(self, handle: StepHandle) -> StepResult:
        """The result of the chunk step started as ``handle``."""
        assert handle.run is not None, "step_wait: this handle belongs to another env"
        return handle.run()

    def reset_async(self, env_ids: Sequence[int], episodes: Sequence[EpisodeSpec], render: np.ndarray) -> StepHandle:
        """Start :meth:`reset`; :meth:`reset_wait` collects it. With worker processes the
        other slots keep stepping while a slot builds a new scene. Default: deferred."""
        ids = np.asarray(env_ids, np.int64)
        return StepHandle(ids, lambda: self.reset(ids, episodes, render))

    def reset_wait(self, handle: StepHandle) -> StepResult:
        """The result of the reset started as ``handle``."""
        assert handle.run is not None, "reset_wait: this handle belongs to another env"
        return handle.run()

    def ready(self, handle: StepHandle) -> bool:
        """Whether waiting on ``handle`` would return at once (polled by the loop; default True)."""
        return True

    def wait(self, handles: Sequence[StepHandle], timeout: float | None) -> None:
        """Block until one of ``handles`` is :meth:`ready` or ``timeout`` seconds passed (default: no wait)."""

    def observe(self, env_ids: Sequence[int], render: np.ndarray) -> Observation:
        """The current observation of all slots, rendering cameras for ``env_ids`` where ``render``.

        Used when a slot needs a policy query on a step the evaluator did not
        foresee (so its images were not rendered with the step).
        """
        raise NotImplementedError

    def render_count(self) -> int:
        """Camera images rendered so far (all slots, all cameras), for benchmarks."""
        return 0

    def shard_of(self, slot: int) -> str | None:
        """Where ``slot`` runs when that is not this host (a Ray shard), for the episode record; else None."""
        return None

    def close(self) -> None:
        """Stop workers and free simulators."""

    def __enter__(self) -> VectorEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ChunkNativeEnv(VectorEnv):
    """A VectorEnv whose native call is the chunk step (a worker pool, Ray shards):
    :meth:`step` is :meth:`step_chunk` with one action per slot."""

    def step(self, env_ids: Sequence[int], actions: np.ndarray, render: np.ndarray) -> StepResult:
        acts = np.asarray(actions, np.float32)
        res = self.step_chunk(env_ids, acts[:, None, :], np.ones(len(acts), np.int64), render)
        res.steps = None
        return res

    @abc.abstractmethod
    def step_chunk(
        self, env_ids: Sequence[int], actions: np.ndarray, counts: np.ndarray, render: np.ndarray
    ) -> StepResult:
        """See :meth:`VectorEnv.step_chunk`; here the one to implement."""


class EnvFamily(abc.ABC):
    """A family of envs under one namespace (``metaworld/pick-place-v3``).

    Registered through ``arena_register_envs``; ``Config``'s fields become
    flags of ``arena eval`` when one of the family's ids is chosen.
    """

    name: str
    Config: type = attrs.make_class("NoEnvConfig", {})

    @abc.abstractmethod
    def ids(self) -> list[str]:
        """Env ids within the family (without the ``family/`` prefix)."""

    @abc.abstractmethod
    def make(self, env_id: str, config: object, num_envs: int) -> VectorEnv:
        """Build a vector env of ``num_envs`` slots for ``env_id`` (validated against ids())."""
