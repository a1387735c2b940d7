"""The ``debug/*`` dynamics as an :class:`arena.vector.Simulator`, for tests and benchmarks of the worker pool.

Same initial states, steps, success and frames as :class:`~arena.builtins.debug_env.DebugVectorEnv`,
so the two give identical outcomes; the state row is [x, y, goal_x, goal_y].
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from arena.builtins.debug_env import DebugEnvConfig, advance, burn, draw, initial_state, solved
from arena.env import EpisodeSpec
from arena.vector import Simulator

__all__ = ["PointSimulator"]


class PointSimulator(Simulator):
    def __init__(self, config: DebugEnvConfig) -> None:
        self.config = config
        self.episode: EpisodeSpec | None = None
        self.t = 0
        self.state = np.zeros(4, np.float32)

    def reset(self, episode: EpisodeSpec, state: np.ndarray) -> None:
        pos, goal = initial_state(episode.task, episode.seed)
        state[:2], state[2:4] = pos, goal
        self.episode, self.t = episode, 0
        self.state = state  # the slot's row: render draws from it

    def step(self, action: np.ndarray, state: np.ndarray) -> bool:
        self.t += 1
        ep = self.episode
        if ep is not None and ep.index in self.config.crash_episodes and self.t == 3:
            raise RuntimeError(f"debug env crashed on purpose at step 3 of episode {ep.index}")
        burn(self.config.step_cost_ms)
        state[:2] = advance(state[:2], action)
        return solved(state[:2], state[2:4])

    def render(self, images: Mapping[str, np.ndarray]) -> int:
        draw(images["top"], self.state[:2], self.state[2:4])
        return 1
