"""The env adapter interface: a batch of ``num_envs`` slots stepped by the evaluator.

It fits a pool of CPU MuJoCo processes (each slot one sim) and a GPU-batched
simulator (one process, N envs as tensors) alike: the evaluator only talks in
slot ids, and an adapter returns one batched :class:`Observation` for all slots.
See docs/envs.md for the Isaac Lab shape this is kept honest to.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import attrs
import numpy as np

from arena.contract import EnvSpec, Observation

__all__ = ["EpisodeSpec", "StepResult", "VectorEnv", "EnvFamily"]


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
    """

    env_ids: np.ndarray
    success: np.ndarray
    error: list[str | None]
    observation: Observation


class VectorEnv(abc.ABC):
    """N env slots. Slots are reset and stepped independently, by subsets.

    Stepping a subset lets a later pipelined evaluator step one group of slots
    while a policy query for another group is in flight.
    """

    spec: EnvSpec
    num_envs: int

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

    def observe(self, env_ids: Sequence[int], render: np.ndarray) -> Observation:
        """The current observation of all slots, rendering cameras for ``env_ids`` where ``render``.

        Used when a slot needs a policy query on a step the evaluator did not
        foresee (so its images were not rendered with the step).
        """
        raise NotImplementedError

    def render_count(self) -> int:
        """Camera images rendered so far (all slots, all cameras), for benchmarks."""
        return 0

    def close(self) -> None:
        """Stop workers and free simulators."""

    def __enter__(self) -> VectorEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
