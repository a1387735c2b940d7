"""Meta-World v3 for arena: the ``metaworld`` env family and the ``expert`` policy family.

Importing the package selects MuJoCo's EGL backend (headless GPU/Mesa
rendering) when ``MUJOCO_GL`` is unset, because MuJoCo reads the variable once,
when it is first imported, and its default (GLFW) needs a display. Worker
processes inherit the variable.
"""

from __future__ import annotations

from arena.gl import prefer_egl

prefer_egl(__name__)

__version__ = "0.1.0"
