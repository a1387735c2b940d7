"""arena-libero: the LIBERO benchmark suites as an arena env family, and a scripted expert.

``libero/<suite>`` runs every task of a suite with the published evaluation
protocol (fixed initial states, settling no-ops, per-suite step limits);
``libero/<suite>/<task>`` one task. See docs/libero.md.
"""

from __future__ import annotations

from arena.gl import prefer_egl

prefer_egl(__name__)  # before robosuite or mujoco is imported

__version__ = "0.1.0"
