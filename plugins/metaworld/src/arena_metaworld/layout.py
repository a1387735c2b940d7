"""The 39-d Meta-World observation split into named state groups.

Layout read from metaworld 3.1.1 ``sawyer_xyz_env.py``:
``_get_curr_obs_combined_no_goal`` builds the 18-d current frame (hand xyz from
``data.body("hand").xpos``, gripper opening = finger distance / 0.1 clipped to
[0, 1], then a 14-d object block padded with zeros: up to two objects as
pos(3) + quat(4) each), and ``_get_obs`` stacks [current 18, previous 18,
goal 3]. Quaternions are passed through as each task reports them: most tasks
use scipy's (x, y, z, w) order, a few MuJoCo's (w, x, y, z), hence the neutral
element names ``q0..q3``.
"""

from __future__ import annotations

__all__ = ["OBS_DIM", "STATE_CONVENTIONS", "STATE_GROUPS", "GROUP_SLICES"]

OBS_DIM = 39

_XYZ = ("x", "y", "z")
_QUAT = ("q0", "q1", "q2", "q3")
_FRAME: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("hand_pos", _XYZ),
    ("gripper", ("opening",)),
    ("obj1_pos", _XYZ),
    ("obj1_quat", _QUAT),
    ("obj2_pos", _XYZ),
    ("obj2_quat", _QUAT),
)

#: group name -> element names, in observation order (the order also reassembles the 39-d vector)
STATE_GROUPS: dict[str, tuple[str, ...]] = {
    **dict(_FRAME),
    **{f"prev_{name}": elements for name, elements in _FRAME},
    "goal": _XYZ,
}

#: what the numbers mean (arena.conventions): world-frame positions. The object quaternions are
#: left undeclared: Meta-World's tasks fill them from MuJoCo (w first) or scipy (w last).
STATE_CONVENTIONS: dict[str, str] = {
    name: "absolute_xyz" for name in STATE_GROUPS if name.endswith("_pos") or name == "goal"
}


def _slices() -> dict[str, slice]:
    out, start = {}, 0
    for name, elements in STATE_GROUPS.items():
        out[name] = slice(start, start + len(elements))
        start += len(elements)
    assert start == OBS_DIM, start
    return out


#: group name -> its columns in the 39-d vector
GROUP_SLICES: dict[str, slice] = _slices()
