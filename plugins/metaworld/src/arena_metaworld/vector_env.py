"""``MetaWorldVectorEnv``: the arena VectorEnv over Meta-World scenes.

``num_envs == 1`` steps the scene in this process (the fast path: one
metaworld step plus a 39-float row copy); ``num_envs > 1`` runs one spawned
worker process per slot (:mod:`arena_metaworld.workers`). Either way the
observation lives in preallocated batch buffers: state groups are column views
of one (N, 39) float32 array, so a step updates a single row.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from arena.contract import ActionGroup, EnvSpec, Observation, Task
from arena.env import EpisodeSpec, StepResult, VectorEnv
from arena_metaworld.config import METAWORLD_MAX_PATH_LENGTH, MetaWorldConfig
from arena_metaworld.layout import GROUP_SLICES, OBS_DIM, STATE_GROUPS
from arena_metaworld.sim import MetaWorldSim, make_env
from arena_metaworld.tasks import instructions, tasks_of
from arena_metaworld.workers import WorkerPool

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
            ActionGroup("ee_delta", ("x", "y", "z"), low=low[:3], high=high[:3]),
            ActionGroup("gripper", ("effort",), low=low[3:], high=high[3:]),
        ),
        tasks=tuple(Task(t, text[t]) for t in tasks),
        max_episode_steps=METAWORLD_MAX_PATH_LENGTH,
        control_hz=1.0 / float(env.dt),  # type: ignore[attr-defined]
        success_rule=SUCCESS_RULE,
    )


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class MetaWorldVectorEnv(VectorEnv):
    """``num_envs`` Meta-World slots; in-process for one slot, one worker process per slot otherwise."""

    def __init__(self, env_id: str, config: MetaWorldConfig, num_envs: int) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.config = config
        self.num_envs = num_envs
        self._sim: MetaWorldSim | None = None
        self._pool: WorkerPool | None = None
        tasks = tasks_of(env_id)
        if num_envs == 1:
            self._sim = MetaWorldSim(config)
            # build the first task's env once: it gives the spec and serves the first episode
            self._sim.prepare(tasks[0])
            self.spec = build_spec(env_id, config, self._sim.env)
        else:
            self.spec = build_spec(env_id, config)
            self._pool = WorkerPool(num_envs, config)
        self._instructions = {t.name: t.instruction for t in self.spec.tasks}
        self._state = np.zeros((num_envs, OBS_DIM), np.float32)
        self._images = {cam: np.zeros((num_envs, h, w, 3), np.uint8) for cam, (h, w) in self.spec.cameras.items()}
        self._instruction = [""] * num_envs
        self._obs = Observation(
            images=self._images,
            state={name: self._state[:, sl] for name, sl in GROUP_SLICES.items()},
            instruction=self._instruction,
            env_ids=np.arange(num_envs),
        )
        self._renders = 0
        self._closed = False

    # -- helpers ---------------------------------------------------------------------------

    def _image_row(self, i: int) -> dict[str, np.ndarray]:
        return {cam: img[i] for cam, img in self._images.items()}

    def _check_task(self, episode: EpisodeSpec) -> str | None:
        if episode.task in self._instructions:
            return None
        return f"task {episode.task!r} is not part of {self.spec.name} (tasks: {', '.join(self._instructions)})"

    def _apply(self, i: int, reply: tuple | str) -> tuple[bool, str | None]:
        """Copy a worker reply into slot ``i``'s rows; returns (success, error)."""
        if isinstance(reply, str):
            return False, reply
        if reply[0] != "ok":
            return False, reply[1]
        _, obs, success, images = reply
        if obs is not None:
            if not math.isfinite(float(obs.sum())):
                return False, "simulation diverged: non-finite observation"
            self._state[i] = obs
        if images is not None:
            for cam, img in images.items():
                self._images[cam][i] = img
            self._renders += len(images)
        return bool(success), None

    # -- VectorEnv -------------------------------------------------------------------------

    def reset(self, env_ids: Sequence[int], episodes: Sequence[EpisodeSpec], render: np.ndarray) -> StepResult:
        n = len(env_ids)
        errors: list[str | None] = [None] * n
        for k, ep in enumerate(episodes):
            errors[k] = self._check_task(ep)
        todo = [k for k in range(n) if errors[k] is None]
        if self._sim is not None:
            for k in todo:
                i = int(env_ids[k])
                try:
                    self._state[i] = self._sim.reset(episodes[k].task, episodes[k].seed)
                    if render[k]:
                        self._renders += self._sim.render_into(self._image_row(i))
                except Exception as exc:  # noqa: BLE001 - reported per slot
                    errors[k] = _error(exc)
        else:
            assert self._pool is not None
            replies = self._pool.request(
                [int(env_ids[k]) for k in todo],
                [("reset", episodes[k].task, int(episodes[k].seed), bool(render[k])) for k in todo],
            )
            # a worker that died before or during the reset was replaced: retry once on the fresh one
            retry = [j for j, r in enumerate(replies) if isinstance(r, str)]
            if retry:
                log.warning("retrying %d reset(s) on replaced worker(s): %s", len(retry), [replies[j] for j in retry])
                again = self._pool.request(
                    [int(env_ids[todo[j]]) for j in retry],
                    [
                        ("reset", episodes[todo[j]].task, int(episodes[todo[j]].seed), bool(render[todo[j]]))
                        for j in retry
                    ],
                )
                for j, r in zip(retry, again):
                    replies[j] = r
            for j, k in enumerate(todo):
                errors[k] = self._apply(int(env_ids[k]), replies[j])[1]
        for k, ep in enumerate(episodes):
            if errors[k] is None:
                self._instruction[int(env_ids[k])] = self._instructions[ep.task]
        return StepResult(np.asarray(env_ids), np.zeros(n, bool), errors, self._obs)

    def step(self, env_ids: Sequence[int], actions: np.ndarray, render: np.ndarray) -> StepResult:
        n = len(env_ids)
        success = np.zeros(n, bool)
        errors: list[str | None] = [None] * n
        sim = self._sim
        if sim is not None:
            for k in range(n):
                i = env_ids[k]
                try:
                    obs, ok = sim.step(actions[k])
                except Exception as exc:  # noqa: BLE001 - reported per slot
                    errors[k] = _error(exc)
                    continue
                if not math.isfinite(obs.sum()):
                    errors[k] = "simulation diverged: non-finite observation"
                    continue
                self._state[i] = obs
                success[k] = ok
                if render[k]:
                    self._renders += sim.render_into(self._image_row(i))
        else:
            assert self._pool is not None
            acts = np.asarray(actions)
            replies = self._pool.request(
                [int(i) for i in env_ids], [("step", acts[k], bool(render[k])) for k in range(n)]
            )
            for k in range(n):
                success[k], errors[k] = self._apply(int(env_ids[k]), replies[k])
        return StepResult(np.asarray(env_ids), success, errors, self._obs)

    def observe(self, env_ids: Sequence[int], render: np.ndarray) -> Observation:
        rows = [int(env_ids[k]) for k in range(len(env_ids)) if render[k]]
        if self._sim is not None:
            for i in rows:
                if self._sim.env is not None:
                    self._renders += self._sim.render_into(self._image_row(i))
        elif rows:
            assert self._pool is not None
            for i, reply in zip(rows, self._pool.request(rows, [("observe", True)] * len(rows))):
                self._apply(i, reply)
        return self._obs

    def render_count(self) -> int:
        return self._renders

    def worker_pid(self, slot: int) -> int | None:
        """Process id of the worker serving ``slot`` (None in-process); for tests and diagnostics."""
        return self._pool.pid(slot) if self._pool is not None else None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pool is not None:
            self._pool.close()
        if self._sim is not None:
            self._sim.close()
