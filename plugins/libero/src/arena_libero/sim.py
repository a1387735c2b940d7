"""One LIBERO scene as an :class:`arena.vector.Simulator`: builds the task's env, starts episodes from
the benchmark's initial states, steps, renders on demand.

The scene is a robosuite env built from the task's BDDL file without
robosuite's camera observables and offscreen renderer: frames are rendered
with ``mujoco.Renderer`` only when the loop reads them (a 256x256 agent view
costs ~80 ms of CPU with CPU rendering, a step without cameras ~7 ms). The env is
built with ``hard_reset=False`` (a hard reset reloads the whole model, ~1.5 s);
each episode then loads its initial state with ``set_init_state``, which
replaces every position and velocity, and the gripper's command ramp is reset
as a hard reset would, so the episode does not depend on the one before it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import mujoco
import numpy as np

from arena.env import EpisodeSpec
from arena.vector import Simulator, close_quietly
from arena_libero.config import CAMERAS, LiberoConfig
from arena_libero.layout import quat_to_axis_angle, slices
from arena_libero.tasks import bddl_file, init_states

__all__ = ["LiberoSim", "NOOP", "sim_factory", "make_env"]

#: the settling action of the published evaluations: no motion, gripper open (-1)
NOOP = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0])


def make_env(suite_name: str, task: str) -> Any:
    """The task's robosuite env (OSC_POSE control at 20 Hz, Panda), without cameras or renderer."""
    from libero.libero.envs.env_wrapper import ControlEnv

    return ControlEnv(
        bddl_file_name=bddl_file(suite_name, task),
        use_camera_obs=False,
        has_offscreen_renderer=False,
        has_renderer=False,
        hard_reset=False,
        camera_names=[],
    )


def _goal(env: Any) -> tuple[str, str | None]:
    """(object, target) of the task's first goal predicate: (soup, basket region) of ('in', soup, basket region)."""
    goal = env.env.parsed_problem["goal_state"][0]
    obj = str(goal[1])
    return obj, (str(goal[2]) if len(goal) > 2 else None)


class LiberoSim(Simulator):
    """A slot's simulator: the current task's env, its initial states and its camera renderer."""

    def __init__(self, suite_name: str, config: LiberoConfig) -> None:
        self.suite = suite_name
        self.config = config
        self.task: str | None = None
        self.env: Any = None
        self.builds = 0
        self._states = np.zeros((0, 0))
        self._renderer: Any = None
        self._slices = slices(config.privileged)
        self._goal: tuple[str, str | None] = ("", None)

    def prepare(self, task: str) -> None:
        """Build ``task``'s scene now, if it is not the current one (one scene per slot bounds memory)."""
        if task == self.task:
            return
        self.close()
        self.env = make_env(self.suite, task)
        self.task = task
        self.builds += 1
        self._states = init_states(self.suite, task)
        self._goal = _goal(self.env)

    def reset(self, episode: EpisodeSpec, state: np.ndarray) -> None:
        """Episode i starts from the task's i-th initial state (mod their number), then settles."""
        self.prepare(episode.task)
        np.random.seed(episode.seed % 2**32)  # robosuite's placement samplers draw from numpy's global generator
        self.env.reset()
        for robot in self.env.env.robots:
            # a hard reset would rebuild the gripper model, whose command ramps from zero: so must ours
            robot.gripper.current_action = np.zeros(robot.gripper.dof)
        obs = self.env.set_init_state(self._states[episode.index % len(self._states)])
        for _ in range(self.config.settle_steps):
            obs, _, _, _ = self.env.step(NOOP)
        self._write(obs, state)

    def step(self, action: np.ndarray, state: np.ndarray) -> bool:
        obs, _, done, _ = self.env.step(np.asarray(action, np.float64))
        self._write(obs, state)
        return bool(done)

    def _write(self, obs: Mapping[str, Any], state: np.ndarray) -> None:
        s = self._slices
        quat = obs["robot0_eef_quat"]
        state[s["eef_pos"]] = obs["robot0_eef_pos"]
        state[s["eef_quat"]] = quat
        state[s["eef_axis_angle"]] = quat_to_axis_angle(quat)
        state[s["gripper_qpos"]] = obs["robot0_gripper_qpos"]
        state[s["joint_pos"]] = obs["robot0_joint_pos"]
        if "object_pos" in s:
            obj, target = self._goal
            state[s["object_pos"]], state[s["object_quat"]] = self._pose(obj)
            state[s["target_pos"]] = self._pose(target)[0] if target is not None else state[s["object_pos"]]

    def _pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """World position and (x, y, z, w) orientation of an object, fixture or region (a site) by BDDL name."""
        data = self.env.env.sim.data
        body = self.env.env.obj_body_id.get(name)
        quat = np.empty(4)
        if body is not None:
            pos, wxyz = data.body_xpos[body], data.body_xquat[body]
        else:
            site = self.env.env.sim.model.site_name2id(name)
            pos, wxyz = data.site_xpos[site], np.empty(4)
            mujoco.mju_mat2Quat(wxyz, data.site_xmat[site])
        quat[:3], quat[3] = wxyz[1:], wxyz[0]
        return pos, quat

    def render(self, images: Mapping[str, np.ndarray]) -> int:
        if self.env is None or not images:
            return 0
        if self._renderer is None:
            size = self.config.image_size
            self._renderer = mujoco.Renderer(self.env.sim.model._model, size, size)
        data = self.env.sim.data._data
        for cam, out in images.items():
            self._renderer.update_scene(data, camera=CAMERAS[cam])
            self._renderer.render(out=out)
        return len(images)

    def close(self) -> None:
        close_quietly(self._renderer, f"the {self.task} renderer")
        close_quietly(self.env, f"the {self.task} env")
        self._renderer = self.env = self.task = None


def sim_factory(suite_name: str, config: LiberoConfig) -> functools.partial[LiberoSim]:
    """The picklable factory the worker processes build their simulator with."""
    return functools.partial(LiberoSim, suite_name, config)
