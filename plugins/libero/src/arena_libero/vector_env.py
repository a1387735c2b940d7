"""``LiberoVectorEnv``: LIBERO scenes in arena's core slot runners.

``num_envs == 1`` steps the scene in this process; ``num_envs > 1`` runs one
spawned worker per slot (:mod:`arena.vector.process`: EGL rendering, death
and hang detection, observations in shared memory, one round trip per action
chunk). A worker builds a scene only when its slot's task changes.
"""

from __future__ import annotations

import numpy as np

from arena.contract import ActionGroup, EnvSpec, Task
from arena.vector import SimVectorEnv
from arena_libero.config import LiberoConfig
from arena_libero.layout import STATE_CONVENTIONS, groups, slices
from arena_libero.sim import sim_factory
from arena_libero.tasks import MAX_STEPS, instruction, tasks_of

__all__ = ["LiberoVectorEnv", "build_spec", "SUCCESS_RULE", "CONTROL_HZ"]

#: robosuite's control frequency in LIBERO's envs
CONTROL_HZ = 20.0

SUCCESS_RULE = (
    "the episode ends as a success at the first step where the task's BDDL goal holds (LIBERO's own "
    "_check_success, evaluated after every step); reaching the suite's step limit is a failure"
)


def build_spec(env_id: str, config: LiberoConfig) -> EnvSpec:
    """The EnvSpec of ``libero/<env_id>``."""
    suite_name, tasks = tasks_of(env_id)
    state = groups(config.privileged)
    one = np.ones(3, np.float32)
    return EnvSpec(
        name=f"libero/{env_id}",
        embodiment="libero_panda",
        cameras={cam: (config.image_size, config.image_size) for cam in config.cameras},
        state_groups=state,
        # OSC_POSE deltas, each in [-1, 1] (robosuite scales them to 5 cm and 0.5 rad per step)
        action_groups=(
            ActionGroup("ee_delta_pos", ("x", "y", "z"), low=-one, high=one, convention="delta_xyz"),
            ActionGroup("ee_delta_rot", ("rx", "ry", "rz"), low=-one, high=one, convention="axis_angle"),
            # -1 opens the fingers, +1 closes them
            ActionGroup(
                "gripper",
                ("close",),
                low=-np.ones(1, np.float32),
                high=np.ones(1, np.float32),
                convention="binary_close_positive",
            ),
        ),
        state_conventions={k: v for k, v in STATE_CONVENTIONS.items() if k in state},
        tasks=tuple(Task(t, instruction(suite_name, t, config.instruction)) for t in tasks),
        max_episode_steps=MAX_STEPS[suite_name],
        control_hz=CONTROL_HZ,
        success_rule=SUCCESS_RULE,
    )


class LiberoVectorEnv(SimVectorEnv):
    """``num_envs`` LIBERO slots; in process for one slot, one worker process per slot otherwise."""

    def __init__(self, env_id: str, config: LiberoConfig, num_envs: int, processes: bool | None = None) -> None:
        self.config = config
        suite_name, _ = tasks_of(env_id)
        sl = slices(config.privileged)
        super().__init__(
            build_spec(env_id, config),
            sim_factory(suite_name, config),
            num_envs,
            state_dim=max(s.stop for s in sl.values()),
            group_slices=sl,
            processes=processes,
            worker_timeout_s=config.worker_timeout_s,
            label="libero",
        )
