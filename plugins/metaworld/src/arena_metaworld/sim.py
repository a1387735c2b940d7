"""One Meta-World scene as an :class:`arena.vector.Simulator`: builds the task's env, seeds resets, steps, renders.

The same class runs in-process (``num_envs == 1``) and inside each worker
process of the core pool (:mod:`arena.vector.process`), so both paths share
one implementation of seeding and success. A scene is rebuilt only when a
slot's task changes.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import mujoco
import numpy as np

from arena.env import EpisodeSpec
from arena.vector import Simulator, close_quietly
from arena_metaworld.config import MetaWorldConfig
from arena_metaworld.render import CameraRenderer
from arena_metaworld.tasks import env_class

__all__ = ["MetaWorldSim", "make_env", "seeded_reset", "sim_factory"]

_BADQACC = int(mujoco.mjtWarning.mjWARN_BADQACC)

#: Meta-World raises once curr_path_length reaches max_path_length; arena's evaluator owns the step limit
_NO_LIMIT = 2**62


def make_env(task: str) -> Any:
    """A goal-observable env of ``task`` whose resets draw object/goal positions from ``env.np_random``.

    Mirrors what metaworld's MT benchmarks do (``partially_observable=False``:
    the goal is part of the observation, which the scripted experts need),
    but instead of a frozen list of 50 pre-sampled goals (``_freeze_rand_vec``)
    each reset samples from the env's seeded generator (``seeded_rand_vec``),
    so the initial state is a function of the episode seed alone.
    """
    env = env_class(task)()
    env._partially_observable = False
    # the cached observation space depends on observability (see SawyerXYZEnv.set_task)
    env.__dict__.pop("sawyer_observation_space", None)
    env._set_task_called = True
    env._freeze_rand_vec = False
    env.seeded_rand_vec = True
    env.max_path_length = _NO_LIMIT
    return env


def seeded_reset(env: Any, seed: int) -> np.ndarray:
    """Reset ``env`` to the initial state determined by ``seed``; returns the 39-d observation.

    ``SawyerXYZEnv.reset`` ignores its ``seed`` argument; ``env.seed`` re-creates
    ``np_random`` (gymnasium's ``seeding.np_random``), which ``_get_state_rand_vec``
    draws the object/goal positions from. MuJoCo data is reset inside ``reset``,
    so nothing of the previous episode leaks into the next.
    """
    env.seed(int(seed))
    obs, _ = env.reset()
    return obs


class MetaWorldSim(Simulator):
    """A slot's simulator: the current task's env and its camera renderer."""

    def __init__(self, config: MetaWorldConfig) -> None:
        self.config = config
        self.task: str | None = None
        self.env: Any = None
        self.builds = 0
        self._renderer: CameraRenderer | None = None

    def _switch(self, task: str) -> None:
        """Build ``task``'s env, dropping the previous one (one env per slot bounds memory and GL contexts)."""
        self.close()
        self.env = make_env(task)
        self.task = task
        self.builds += 1
        self._renderer = None

    def prepare(self, task: str) -> None:
        """Build ``task``'s env now (without a reset), if it is not the current one."""
        if task != self.task:
            self._switch(task)

    def reset(self, episode: EpisodeSpec, state: np.ndarray) -> None:
        self.prepare(episode.task)
        state[:] = seeded_reset(self.env, episode.seed)

    def step(self, action: np.ndarray, state: np.ndarray) -> bool:
        """Apply one action, write the 39-d observation; returns success.

        Raises when MuJoCo found the simulation unstable: it then silently
        resets the state (``mjWARN_BADQACC``), which would otherwise let the
        episode go on from a teleported scene.
        """
        obs, _, _, _, info = self.env.step(action)
        if self.env.data.warning[_BADQACC].number:
            raise RuntimeError("simulation unstable: MuJoCo reset the state (bad qacc)")
        state[:] = obs
        return bool(info["success"])

    def render(self, images: Mapping[str, np.ndarray]) -> int:
        if self.env is None:
            return 0
        return self.render_into(images)

    def render_into(self, out: Mapping[str, np.ndarray]) -> int:
        """Render the configured cameras into ``out`` (camera -> (H, W, 3) uint8); returns images rendered."""
        if self._renderer is None:
            c = self.config
            self._renderer = CameraRenderer(
                self.env.model,
                self.env.data,
                c.cameras,
                c.image_height,
                c.image_width,
                shadows=c.shadows,
                reflections=c.reflections,
                upright=c.upright,
                antialias=c.antialias,
            )
        return self._renderer.render_into(out)

    def close(self) -> None:
        close_quietly(self._renderer, f"the {self.task} renderer")
        close_quietly(self.env, f"the {self.task} env")
        self._renderer = self.env = self.task = None


def sim_factory(config: MetaWorldConfig) -> functools.partial[MetaWorldSim]:
    """The picklable factory the worker processes build their simulator with."""
    return functools.partial(MetaWorldSim, config)
