"""``debug/*``: a tiny deterministic env family for loop tests and smoke runs.

A point in the unit square must reach a goal. It has a rendered top-down
camera, a state vector split into named groups and an instruction, and runs
in microseconds per step, so the evaluation loop can be tested end to end
without a physics engine.

Ids: ``debug/reach`` (one task) and ``debug/suite`` (tasks ``reach`` and
``reach-far``). Config ``crash_episodes`` makes the env raise on step 3 of the
listed episode indices, to exercise error accounting. ``slots`` runs the same
dynamics as :mod:`arena.vector` simulators (in process or one worker process
per slot) and ``step_cost_ms`` burns CPU per step, so the worker pool and the
pipelined loop can be tested and measured without a physics engine.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Sequence

import attrs
import numpy as np

import arena
from arena.contract import ActionGroup, EnvSpec, Observation, Task
from arena.env import EnvFamily, EpisodeSpec, StepResult, VectorEnv
from arena.validators import at_least, one_of

SUITES = {
    "reach": ("reach",),
    "suite": ("reach", "reach-far"),
}
INSTRUCTIONS = {
    "reach": "move the point to the green goal",
    "reach-far": "move the point to the far green goal",
}
STEP_SIZE = 0.1
SUCCESS_RADIUS = 0.05
MAX_EPISODE_STEPS = 50


@attrs.define
class DebugEnvConfig:
    image_size: int = attrs.field(
        default=32,
        validator=at_least(8, kind="an integer"),
        metadata={"help": "camera image height and width in pixels"},
    )
    crash_episodes: tuple[int, ...] = attrs.field(
        default=(), converter=tuple, metadata={"help": "episode indices whose env raises on step 3 (testing aid)"}
    )
    slots: str = attrs.field(
        default="array",
        validator=one_of("array", "inprocess", "processes"),
        metadata={
            "identity": False,
            "help": "how slots run: array (all in numpy arrays), inprocess (one arena.vector simulator per slot, "
            "here) or processes (one worker process per slot); same outcomes, for testing the worker pool",
        },
    )
    step_cost_ms: float = attrs.field(
        default=0.0,
        validator=at_least(0.0, kind="a number"),
        metadata={"identity": False, "help": "CPU time each step burns, in ms (benchmarks of the pipelined loop)"},
    )


def initial_state(task: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(position, goal) of an episode of ``task`` with ``seed``."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0.1, 0.3, size=2).astype(np.float32)
    lo, hi = (0.4, 0.6) if task == "reach" else (0.7, 0.9)
    return pos, rng.uniform(lo, hi, size=2).astype(np.float32)


def advance(pos: np.ndarray, action: np.ndarray) -> np.ndarray:
    """The position after one action (clipped to [-1, 1], moving STEP_SIZE per unit)."""
    a = np.clip(np.asarray(action, np.float32), -1.0, 1.0)
    return np.clip(pos + STEP_SIZE * a, 0.0, 1.0)


def solved(pos: np.ndarray, goal: np.ndarray) -> bool:
    return float(np.linalg.norm(pos - goal)) < SUCCESS_RADIUS


def draw(img: np.ndarray, pos: np.ndarray, goal: np.ndarray) -> None:
    """The top-down frame: a green 3x3 goal and a red 3x3 point."""
    size = img.shape[0]
    img[:] = 0
    for (x, y), color in ((goal, (0, 255, 0)), (pos, (255, 0, 0))):
        r = int(np.clip(round(float(y) * (size - 1)), 0, size - 1))
        c = int(np.clip(round(float(x) * (size - 1)), 0, size - 1))
        img[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2] = color


_BURN = bytes(32768)


def burn(ms: float) -> None:
    """Spend ``ms`` of CPU time, like a simulator step (hashing releases the GIL, as MuJoCo's step does)."""
    if ms <= 0:
        return
    end = time.thread_time() + ms / 1000.0
    while time.thread_time() < end:
        hashlib.sha256(_BURN)


def build_spec(env_id: str, config: DebugEnvConfig) -> EnvSpec:
    size = config.image_size
    return EnvSpec(
        name=f"debug/{env_id}",
        embodiment="point2d",
        cameras={"top": (size, size)},
        state_groups={"position": ("x", "y"), "goal": ("goal_x", "goal_y")},
        action_groups=(ActionGroup("delta", ("dx", "dy"), low=[-1, -1], high=[1, 1]),),
        tasks=tuple(Task(t, INSTRUCTIONS[t]) for t in SUITES[env_id]),
        max_episode_steps=MAX_EPISODE_STEPS,
        control_hz=10.0,
        success_rule=f"success when the point is within {SUCCESS_RADIUS} of the goal; "
        "episode ends at the first success; max steps = failure",
    )


class DebugVectorEnv(VectorEnv):
    """All slots in one process as numpy arrays."""

    def __init__(self, env_id: str, config: DebugEnvConfig, num_envs: int) -> None:
        self.config = config
        self.num_envs = num_envs
        size = config.image_size
        self.spec = build_spec(env_id, config)
        self._pos = np.zeros((num_envs, 2), np.float32)
        self._goal = np.zeros((num_envs, 2), np.float32)
        self._episode: list[EpisodeSpec | None] = [None] * num_envs
        self._t = np.zeros(num_envs, np.int64)
        self._images = np.zeros((num_envs, size, size, 3), np.uint8)
        self._instruction = [""] * num_envs
        self._renders = 0

    def _render(self, i: int) -> None:
        draw(self._images[i], self._pos[i], self._goal[i])
        self._renders += 1

    def _obs(self) -> Observation:
        return Observation(
            images={"top": self._images},
            state={"position": self._pos, "goal": self._goal},
            instruction=self._instruction,
            env_ids=np.arange(self.num_envs),
        )

    def reset(self, env_ids: Sequence[int], episodes: Sequence[EpisodeSpec], render: np.ndarray) -> StepResult:
        for i, ep, r in zip(env_ids, episodes, render):
            self._pos[i], self._goal[i] = initial_state(ep.task, ep.seed)
            self._episode[i] = ep
            self._t[i] = 0
            self._instruction[i] = INSTRUCTIONS[ep.task]
            if r:
                self._render(i)
        n = len(env_ids)
        return StepResult(np.asarray(env_ids), np.zeros(n, bool), [None] * n, self._obs())

    def step(self, env_ids: Sequence[int], actions: np.ndarray, render: np.ndarray) -> StepResult:
        success = np.zeros(len(env_ids), bool)
        errors: list[str | None] = [None] * len(env_ids)
        for k, (i, a, r) in enumerate(zip(env_ids, actions, render)):
            self._t[i] += 1
            ep = self._episode[i]
            if ep is not None and ep.index in self.config.crash_episodes and self._t[i] == 3:
                errors[k] = f"RuntimeError: debug env crashed on purpose at step 3 of episode {ep.index}"
                continue
            burn(self.config.step_cost_ms)
            self._pos[i] = advance(self._pos[i], a)
            success[k] = solved(self._pos[i], self._goal[i])
            if r:
                self._render(i)
        return StepResult(np.asarray(env_ids), success, errors, self._obs())

    def observe(self, env_ids: Sequence[int], render: np.ndarray) -> Observation:
        for i, r in zip(env_ids, render):
            if r:
                self._render(i)
        return self._obs()

    def render_count(self) -> int:
        return self._renders


class DebugEnvFamily(EnvFamily):
    name = "debug"
    Config = DebugEnvConfig

    def ids(self) -> list[str]:
        return sorted(SUITES)

    def make(self, env_id: str, config: DebugEnvConfig, num_envs: int) -> VectorEnv:
        if config.slots == "array":
            return DebugVectorEnv(env_id, config, num_envs)
        from arena.builtins.debug_sim import PointSimulator
        from arena.vector import SimVectorEnv

        return SimVectorEnv(
            build_spec(env_id, config),
            functools.partial(PointSimulator, config),
            num_envs,
            processes=config.slots == "processes",
            label="debug",
        )


@arena.hookimpl
def arena_register_envs(registry) -> None:
    registry.register("debug", DebugEnvFamily(), help="tiny deterministic point-reaching envs for tests and smoke runs")
