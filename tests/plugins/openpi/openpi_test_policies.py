"""Policies served by the test servers (imported in the server subprocesses).

The reply echoes what identifies the observation (``id``, a checksum of the image, the
state-derived actions) plus the serving process and its request counter, so a test can check
that every result belongs to its own observation and that no request was lost or run twice.
Optional observation keys steer the policy: ``fail`` (raise), ``delay_s`` (sleep),
``mark`` (touch this file when inference starts, so a test knows a request is in flight),
``reply_bytes`` (add a zero blob of that size to the reply).
"""

from __future__ import annotations

import os
import pathlib
import threading
import time
from typing import Any

import numpy as np


class CountingPolicy:
    """Deterministic openpi-shaped policy that counts the requests it served."""

    def __init__(self, delay_s: float = 0.0, horizon: int = 10, action_dim: int = 7) -> None:
        self.delay_s = delay_s
        self.horizon = horizon
        self.action_dim = action_dim
        self.count = 0
        self._lock = threading.Lock()

    def infer(self, obs: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.count += 1
            count = self.count
        if "mark" in obs:
            pathlib.Path(obs["mark"]).write_text(str(os.getpid()))
        if obs.get("fail"):
            raise RuntimeError(f"policy failure requested: {obs['fail']}")
        time.sleep(float(obs.get("delay_s", self.delay_s)))
        state = np.asarray(obs.get("observation/state", np.zeros(8, np.float32)), dtype=np.float32)
        ramp = np.arange(self.horizon, dtype=np.float32)[:, None]
        actions = np.tile(state[: self.action_dim], (self.horizon, 1)) + ramp
        image = obs.get("observation/image")
        reply = {
            "actions": actions.astype(np.float32),
            "id": obs.get("id"),
            "image_sum": int(np.asarray(image, dtype=np.int64).sum()) if image is not None else None,
            "prompt": obs.get("prompt"),
            "count": count,
            "pid": os.getpid(),
            "policy_timing": {"infer_ms": 0.0},  # extra key, as real openpi policies add
        }
        if "reply_bytes" in obs:
            reply["blob"] = np.zeros(int(obs["reply_bytes"]), dtype=np.uint8)
        return reply


def make_policy(**kwargs: Any) -> CountingPolicy:
    return CountingPolicy(**kwargs)


class GoalSeekingPolicy:
    """For ``debug/*`` through the point2d mapping: reads ``observation/state`` = [x, y, goal_x, goal_y]
    and returns the next ``horizon`` moves of the debug env's dynamics toward the goal.

    ``delay_s`` + a random part up to ``jitter_s`` per request (so concurrent replies finish
    out of order); ``fail_after=N`` raises on every request after the N-th.
    """

    STEP = 0.1  # arena.builtins.debug_env.STEP_SIZE

    def __init__(
        self, horizon: int = 5, delay_s: float = 0.0, jitter_s: float = 0.0, fail_after: int | None = None
    ) -> None:
        self.horizon = horizon
        self.delay_s = delay_s
        self.jitter_s = jitter_s
        self.fail_after = fail_after
        self.count = 0
        self._lock = threading.Lock()
        self._rng = np.random.default_rng()

    @classmethod
    def plan(cls, state: np.ndarray, horizon: int) -> np.ndarray:
        pos, goal = np.array(state[:2], np.float64), np.asarray(state[2:4], np.float64)
        out = np.empty((horizon, 2), np.float32)
        for k in range(horizon):
            action = np.clip((goal - pos) / cls.STEP, -1.0, 1.0)
            pos = np.clip(pos + cls.STEP * action, 0.0, 1.0)
            out[k] = action
        return out

    def infer(self, obs: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.count += 1
            count = self.count
            jitter = float(self._rng.uniform(0.0, self.jitter_s)) if self.jitter_s else 0.0
        if self.fail_after is not None and count > self.fail_after:
            raise RuntimeError(f"goal policy failure requested after {self.fail_after} request(s)")
        time.sleep(self.delay_s + jitter)
        return {"actions": self.plan(np.asarray(obs["observation/state"]), self.horizon), "pid": os.getpid()}


def make_goal_policy(**kwargs: Any) -> GoalSeekingPolicy:
    return GoalSeekingPolicy(**kwargs)
