"""``MetaWorldVectorEnv``: Meta-World scenes in arena's core slot runners.

``num_envs == 1`` steps the scene in this process (the fast path: one
metaworld step plus a 39-float row copy); ``num_envs > 1`` runs one spawned
worker process per slot (:mod:`arena.vector.process`), observations in
shared memory and one round trip per action chunk. Either way the state
groups are column views of one (N, 39) float32 array.
"""

from __future__ import annotations

import logging

import numpy as np

from arena.contract import ActionGroup, EnvSpec, Task
from arena.vector import SimVectorEnv, default_processes
from arena_metaworld.config import METAWORLD_MAX_PATH_LENGTH, MetaWorldConfig
from arena_metaworld.layout import GROUP_SLICES, OBS_DIM, STATE_CONVENTIONS, STATE_GROUPS
from arena_metaworld.sim import MetaWorldSim, make_env, sim_factory
from arena_metaworld.tasks import instructions, tasks_of

log = logging.getLogger(__name__)

__all__ = ["MetaWorldVectorEnv", "build_spec", "SUCCESS_RULE"]

SUCCESS_RULE = (
    "the episode ends as a success at the first step where Meta-World's info['success'] is true "
    "(the task's own success check, evaluated after every step); reaching max_episode_steps is a failure"
)


def build_spec(env_id: str, config: MetaWorldConfig, env: object | None = None) -> EnvSpec:
    """The EnvSpec of ``metaworld/<env_id>``, with bounds and rate read from a Meta-World env."""
    tasks = tasks_of(env_id)
    if env is None:
        env = make_env(tasks[0])
    low = np.asarray(env.action_space.low, np.float32)  # type: ignore[attr-defined]
    high = np.asarray(env.action_space.high, np.float32)  # type: ignore[attr-defined]
    text = instructions()
    size = (config.image_height, config.image_width)
    return EnvSpec(
        name=f"metaworld/{env_id}",
        embodiment="sawyer",
        cameras={cam: size for cam in config.cameras},
        state_groups=dict(STATE_GROUPS),
        action_groups=(
            ActionGroup("ee_delta", ("x", "y", "z"), low=low[:3], high=high[:3], convention="delta_xyz"),
            # a positive effort closes the fingers
            ActionGroup("gripper", ("effort",), low=low[3:], high=high[3:], convention="binary_close_positive"),
        ),
        state_conventions=dict(STATE_CONVENTIONS),
        tasks=tuple(Task(t, text[t]) for t in tasks),
        max_episode_steps=METAWORLD_MAX_PATH_LENGTH,
        control_hz=1.0 / float(env.dt),  # type: ignore[attr-defined]
        success_rule=SUCCESS_RULE,
    )


class MetaWorldVectorEnv(SimVectorEnv):
    """``num_envs`` Meta-World slots; in process for one slot, one worker process per slot otherwise."""

    def __init__(self, env_id: str, config: MetaWorldConfig, num_envs: int, processes: bool | None = None) -> None:
        self.config = config
        tasks = tasks_of(env_id)
        use_processes = default_processes(num_envs) if processes is None else processes
        prebuilt = []
        if use_processes:
            spec = build_spec(env_id, config)
        else:
            # build the first task's scene once: it gives the spec and serves the first episode
            sim = MetaWorldSim(config)
            sim.prepare(tasks[0])
            spec = build_spec(env_id, config, sim.env)
            prebuilt = [sim]
        super().__init__(
            spec,
            sim_factory(config),
            num_envs,
            state_dim=OBS_DIM,
            group_slices=GROUP_SLICES,
            processes=use_processes,
            worker_timeout_s=config.worker_timeout_s,
            prebuilt=prebuilt,
            label="metaworld",
        )
