"""Fixtures for the LIBERO tests: real robosuite scenes (MuJoCo on CPU, EGL rendering)."""

from __future__ import annotations

import os
import pathlib
import sys

os.environ.setdefault("MUJOCO_GL", "egl")

for _dir in (pathlib.Path(__file__).resolve().parent, pathlib.Path(__file__).resolve().parents[1]):
    if str(_dir) not in sys.path:
        sys.path.insert(0, str(_dir))
