"""Policies served by the test servers (imported in the server subprocesses).

The reply echoes what identifies the observation (``id``, a checksum of the image, the
state-derived actions) plus the serving process and its request counter, so a test can check
that every result belongs to its own observation and that no request was lost or run twice.
Optional observation keys steer the policy: ``fail`` (raise), ``delay_s`` (sleep),
``mark`` (touch this file when inference starts, so a test knows a request is in flight).
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
        actions = np.tile(state[: self.action_dim], (self.horizon, 1)) + np.arange(self.horizon, dtype=np.float32)[:, None]
        image = obs.get("observation/image")
        return {
            "actions": actions.astype(np.float32),
            "id": obs.get("id"),
            "image_sum": int(np.asarray(image, dtype=np.int64).sum()) if image is not None else None,
            "prompt": obs.get("prompt"),
            "count": count,
            "pid": os.getpid(),
            "policy_timing": {"infer_ms": 0.0},  # extra key, as real openpi policies add
        }


def make_policy(**kwargs: Any) -> CountingPolicy:
    return CountingPolicy(**kwargs)
