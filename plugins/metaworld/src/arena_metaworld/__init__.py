"""Meta-World v3 for arena: the ``metaworld`` env family and the ``expert`` policy family.

Importing the package selects MuJoCo's EGL backend (headless GPU/Mesa
rendering) when ``MUJOCO_GL`` is unset, because MuJoCo reads the variable once,
when it is first imported, and its default (GLFW) needs a display. Worker
processes inherit the variable.
"""

from __future__ import annotations

import logging
import os
import sys

if sys.platform.startswith("linux") and "MUJOCO_GL" not in os.environ:
    os.environ["MUJOCO_GL"] = "egl"
    if "mujoco" in sys.modules:
        logging.getLogger(__name__).warning(
            "mujoco was imported before arena_metaworld with MUJOCO_GL unset: in-process rendering "
            "may use GLFW and fail without a display; set MUJOCO_GL=egl before importing mujoco"
        )

__version__ = "0.1.0"
