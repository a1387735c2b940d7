"""The LIBERO slot's state row, split into named groups.

Read from robosuite 1.4.0's Panda observables (``robot0_eef_pos``,
``robot0_eef_quat`` in (x, y, z, w) order, ``robot0_gripper_qpos``,
``robot0_joint_pos``). ``eef_axis_angle`` is the orientation as the
published LIBERO pipelines feed it to models (openpi, OpenVLA-OFT): the
rotation vector of the quaternion.

The privileged groups exist only with ``--privileged``: world poses of the
object the task's first goal predicate names, and of its target (a region
or another object). A scripted expert reads them; a vision policy must
not see them, so they are off unless asked for.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ROBOT_GROUPS",
    "PRIVILEGED_GROUPS",
    "STATE_CONVENTIONS",
    "groups",
    "slices",
    "quat_to_axis_angle",
]

_XYZ = ("x", "y", "z")

ROBOT_GROUPS: dict[str, tuple[str, ...]] = {
    "eef_pos": _XYZ,
    "eef_quat": ("qx", "qy", "qz", "qw"),
    "eef_axis_angle": ("ax", "ay", "az"),
    "gripper_qpos": ("left_finger", "right_finger"),
    "joint_pos": tuple(f"j{i}" for i in range(7)),
}

PRIVILEGED_GROUPS: dict[str, tuple[str, ...]] = {
    "object_pos": _XYZ,
    "object_quat": ("qx", "qy", "qz", "qw"),
    "target_pos": _XYZ,
}

STATE_CONVENTIONS: dict[str, str] = {
    "eef_pos": "absolute_xyz",
    "eef_quat": "quaternion_xyzw",
    "eef_axis_angle": "axis_angle",
    "joint_pos": "joint_positions",
    "object_pos": "absolute_xyz",
    "object_quat": "quaternion_xyzw",
    "target_pos": "absolute_xyz",
}


def groups(privileged: bool) -> dict[str, tuple[str, ...]]:
    return {**ROBOT_GROUPS, **(PRIVILEGED_GROUPS if privileged else {})}


def slices(privileged: bool) -> dict[str, slice]:
    out, pos = {}, 0
    for name, elements in groups(privileged).items():
        out[name] = slice(pos, pos + len(elements))
        pos += len(elements)
    return out


def quat_to_axis_angle(quat: np.ndarray) -> np.ndarray:
    """The rotation vector (axis * angle) of an (x, y, z, w) quaternion; zero for the identity."""
    w = min(max(float(quat[3]), -1.0), 1.0)
    den = np.sqrt(1.0 - w * w)
    if den < 1e-8:
        return np.zeros(3)
    return np.asarray(quat[:3], np.float64) * (2.0 * np.arccos(w) / den)
