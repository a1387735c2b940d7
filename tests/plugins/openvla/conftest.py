"""Fixtures of the OpenVLA family tests (real servers on 127.0.0.1, real MuJoCo)."""

from __future__ import annotations

import os
import pathlib
import sys

os.environ.setdefault("MUJOCO_GL", "egl")

for _dir in (pathlib.Path(__file__).resolve().parent, pathlib.Path(__file__).resolve().parents[1]):
    if str(_dir) not in sys.path:
        sys.path.insert(0, str(_dir))
