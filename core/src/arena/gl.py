"""MuJoCo's GL backend for CPU simulator families: EGL unless the user chose one.

MuJoCo reads ``MUJOCO_GL`` once, when it is first imported, and its default
(GLFW) needs a display. A family package calls :func:`prefer_egl` when it is
imported, before anything imports mujoco; worker processes inherit the
variable.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["prefer_egl"]


def prefer_egl(package: str) -> None:
    """Select EGL (headless GPU or Mesa rendering) on Linux when ``MUJOCO_GL`` is unset."""
    if sys.platform.startswith("linux") and "MUJOCO_GL" not in os.environ:
        os.environ["MUJOCO_GL"] = "egl"
        if "mujoco" in sys.modules:
            logging.getLogger(package).warning(
                "mujoco was imported before %s with MUJOCO_GL unset: in-process rendering may use GLFW and "
                "fail without a display; set MUJOCO_GL=egl before importing mujoco",
                package,
            )
