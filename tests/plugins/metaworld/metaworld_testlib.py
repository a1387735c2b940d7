"""Helpers shared by the Meta-World plugin tests and benches."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import mujoco
import numpy as np

from arena.contract import ActionChunk, Observation
from arena.env import EpisodeSpec, VectorEnv
from arena.policy import Policy, PolicyDescription


def run_plan(
    env: VectorEnv, policy: Policy, plan: Sequence[EpisodeSpec], max_steps: int
) -> dict[tuple[str, int], tuple]:
    """A minimal evaluator: free slots take the next planned episode; returns (task, index) -> (success, length, error)."""
    queue = deque(plan)
    n = env.num_envs
    slot_ep: list[EpisodeSpec | None] = [None] * n
    steps = np.zeros(n, np.int64)
    out: dict[tuple[str, int], tuple] = {}
    obs: Observation | None = None

    def start(slots: list[int]) -> None:
        nonlocal obs
        while slots and queue:
            slots = slots[: len(queue)]
            eps = [queue.popleft() for _ in slots]
            res = env.reset(slots, eps, np.zeros(len(slots), bool))
            obs = res.observation
            policy.reset(slots, [e.seed for e in eps])
            failed = []
            for k, s in enumerate(slots):
                if res.error[k] is not None:
                    out[(eps[k].task, eps[k].index)] = (False, 0, res.error[k])
                    failed.append(s)
                else:
                    slot_ep[s], steps[s] = eps[k], 0
            slots = failed

    start(list(range(n)))
    while any(e is not None for e in slot_ep):
        active = np.array([e is not None for e in slot_ep])
        ids = np.flatnonzero(active)
        chunk = policy.infer(obs, active)  # type: ignore[arg-type]
        res = env.step(ids, chunk.numpy()[:, 0], np.zeros(len(ids), bool))
        obs = res.observation
        steps[ids] += 1
        ended = []
        for k, s in enumerate(ids.tolist()):
            ep = slot_ep[s]
            assert ep is not None
            if res.error[k] is not None or res.success[k] or steps[s] >= max_steps:
                out[(ep.task, ep.index)] = (bool(res.success[k]), int(steps[s]), res.error[k])
                slot_ep[s] = None
                ended.append(s)
        start(ended)
    return out


class ZeroChunkCameraPolicy(Policy):
    """A stand-in for a camera-based chunking policy: needs one camera, returns chunks of zero actions."""

    camera = "corner"
    horizon = 8

    def infer(self, observation: Observation, env_mask: np.ndarray) -> ActionChunk:
        rows = np.flatnonzero(env_mask)
        img = observation.images[self.camera]
        assert img.shape[0] == observation.num_envs
        return ActionChunk(np.zeros((len(rows), self.horizon, self.env_spec.action_dim), np.float32), rows)

    def describe(self) -> PolicyDescription:
        return PolicyDescription(
            family="zero-camera",
            action_horizon=self.horizon,
            execution_horizon=self.horizon,
            cameras={self.camera: None},
            action_dim=self.env_spec.action_dim,
        )


def project(model: Any, data: Any, camera: str, point: np.ndarray, height: int, width: int) -> tuple[float, float]:
    """(row, col) of world ``point`` in ``camera``'s raw (not rotated) image: pinhole model from MuJoCo's camera frame."""
    cam = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
    rot = data.cam_xmat[cam].reshape(3, 3)
    p = rot.T @ (np.asarray(point, float) - data.cam_xpos[cam])  # camera looks along its -z axis
    f = (height / 2) / np.tan(np.deg2rad(model.cam_fovy[cam]) / 2)
    return height / 2 - f * p[1] / -p[2], width / 2 + f * p[0] / -p[2]
