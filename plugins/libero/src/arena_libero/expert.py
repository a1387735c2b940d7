"""``libero-expert``: a scripted pick-and-place policy that reads privileged poses.

It is written for goals that put an object in or on a target and solves
every ``libero_object`` task (bowls, as in ``libero_spatial``, would need a
rim grasp it does not make; drawers and stoves are outside it): hover over the object, descend, close, lift (and when the object did not
come along, open and try again), carry over the target, lower, open, while
holding the gripper pointing straight down. It reads the privileged state groups (``object_pos``,
``target_pos``; the env option ``--privileged``), declared in
:meth:`LiberoExpert.describe`, so it gives an evaluation a real success rate
with no model weights. Actions are OSC_POSE deltas, as LIBERO's env takes
them: position and orientation errors times a gain, gripper -1 open / +1
closed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from arena.arrays import to_numpy
from arena.contract import ActionChunk, EnvSpec, Observation
from arena.errors import PolicyError
from arena.policy import NoConfig, Policy, PolicyDescription
from arena_libero.layout import PRIVILEGED_GROUPS, quat_to_axis_angle

__all__ = ["LiberoExpert"]

ACTION_DIM = 7
_READS = ("eef_pos", "eef_quat", "object_pos", "target_pos")

# phases of one slot's episode
_HOVER, _DESCEND, _CLOSE, _LIFT, _CARRY, _LOWER, _RELEASE = range(7)

_GAIN = 15.0  # action per metre of error (OSC_POSE maps an action of 1 to a 5 cm step)
_ROT_GAIN = 2.0  # action per radian of orientation error (an action of 1 turns 0.5 rad)
_DOWN = np.array([1.0, 0.0, 0.0, 0.0])  # (x, y, z, w): fingers pointing down, as LIBERO's Panda starts
_LIFTED_DZ = 0.05  # the object rose this much with the gripper: grasped
_HOVER_DZ = 0.10  # above the object before descending
_GRASP_DZ = 0.03  # grasp this far above the object's origin (tall objects: bottles, cans)...
_LOW_OBJECT_Z = 0.03  # ...unless it lies this low (flat boxes): then at its origin
_CARRY_DZ = 0.25  # carry this far above the higher of the grasp and the target
_RELEASE_DZ = 0.12  # open this far above the target
_CLOSE_STEPS = 12
_DESCEND_STEPS = 30  # stop descending after this many steps (the object blocks the fingers)


class LiberoExpert(Policy):
    """The scripted pick-and-place expert; one action per query."""

    Config = NoConfig

    def __init__(self, config: object, env_spec: EnvSpec, num_envs: int) -> None:
        super().__init__(config, env_spec, num_envs)
        self._problems: list[str] = []
        missing = [g for g in _READS if g not in env_spec.state_groups]
        if any(g in PRIVILEGED_GROUPS for g in missing):
            read = [g for g in _READS if g in PRIVILEGED_GROUPS]
            self._problems.append(
                f"libero-expert reads the privileged state groups {', '.join(read)}, which env "
                f"{env_spec.name} provides only with the env option --privileged (arena eval ... --privileged true)"
            )
        elif missing:
            self._problems.append(f"env {env_spec.name} has no state group(s) {', '.join(missing)}")
        if env_spec.action_dim != ACTION_DIM:
            self._problems.append(f"libero-expert writes {ACTION_DIM}-d actions, env has {env_spec.action_dim}")
        self._phase = np.zeros(num_envs, np.int64)
        self._count = np.zeros(num_envs, np.int64)
        self._grasp = np.zeros((num_envs, 3))

    def reset(self, env_ids: Sequence[int], seeds: Sequence[int] | None = None) -> None:
        ids = np.asarray(env_ids, np.int64)
        self._phase[ids] = _HOVER
        self._count[ids] = 0

    def infer(self, observation: Observation, env_mask: np.ndarray) -> ActionChunk:
        if self._problems:
            raise PolicyError("libero-expert cannot run: " + "; ".join(self._problems))
        rows = np.flatnonzero(env_mask)
        eef, quat, obj, target = (to_numpy(observation.state[g]).astype(np.float64) for g in _READS)
        out = np.zeros((len(rows), 1, ACTION_DIM), np.float32)
        for k, r in enumerate(rows.tolist()):
            out[k, 0] = self._act(r, eef[r], obj[r], target[r])
            out[k, 0, 3:6] = np.clip(_rotation_error(quat[r]) * _ROT_GAIN, -1.0, 1.0)
        return ActionChunk(out, observation.env_ids[rows])

    def _act(self, r: int, eef: np.ndarray, obj: np.ndarray, target: np.ndarray) -> np.ndarray:
        phase = int(self._phase[r])
        grip = -1.0
        if phase == _HOVER:
            goal = obj + (0.0, 0.0, _HOVER_DZ)
            if np.linalg.norm((goal - eef)[:2]) < 0.01 and abs(goal[2] - eef[2]) < 0.02:
                self._next(r, _DESCEND)
        elif phase == _DESCEND:
            goal = obj + (0.0, 0.0, _GRASP_DZ if obj[2] > _LOW_OBJECT_Z else 0.0)
            self._count[r] += 1
            if np.linalg.norm(goal - eef) < 0.01 or self._count[r] > _DESCEND_STEPS:
                self._grasp[r] = eef
                self._next(r, _CLOSE)
        elif phase == _CLOSE:
            goal, grip = self._grasp[r], 1.0
            self._count[r] += 1
            if self._count[r] > _CLOSE_STEPS:
                self._next(r, _LIFT)
        elif phase == _LIFT:
            goal, grip = np.array([eef[0], eef[1], self._carry_z(r, target)]), 1.0
            if eef[2] > goal[2] - 0.03:
                self._next(r, _CARRY if obj[2] > self._grasp[r, 2] + _LIFTED_DZ else _HOVER)  # missed: again
        elif phase == _CARRY:
            goal, grip = np.array([target[0], target[1], self._carry_z(r, target)]), 1.0
            if np.linalg.norm((goal - eef)[:2]) < 0.015:
                self._next(r, _LOWER)
        elif phase == _LOWER:
            goal, grip = target + (0.0, 0.0, _RELEASE_DZ), 1.0
            if abs(goal[2] - eef[2]) < 0.02:
                self._next(r, _RELEASE)
        else:
            goal = target + (0.0, 0.0, _RELEASE_DZ)
        action = np.zeros(ACTION_DIM)
        action[:3] = np.clip((goal - eef) * _GAIN, -1.0, 1.0)
        action[6] = grip
        return action

    def _carry_z(self, r: int, target: np.ndarray) -> float:
        """Carrying height: above where the object was grasped and above the target (floor or table scenes)."""
        return max(float(self._grasp[r, 2]), float(target[2])) + _CARRY_DZ

    def _next(self, r: int, phase: int) -> None:
        self._phase[r] = phase
        self._count[r] = 0

    def describe(self) -> PolicyDescription:
        return PolicyDescription(
            family="libero-expert",
            action_horizon=1,
            execution_horizon=1,
            cameras={},
            state={
                "eef_pos": 3,
                "eef_quat": 4,
                **{name: len(el) for name, el in PRIVILEGED_GROUPS.items() if name != "object_quat"},
            },
            action_dim=ACTION_DIM,
            uses_instruction=False,
            info={
                "env_option": "privileged=true (reads object_pos and target_pos)",
                "solves": "every libero_object task (top-down pick and place; not bowls, drawers or stoves)",
            },
            problems=list(self._problems),
        )


def _rotation_error(quat: np.ndarray) -> np.ndarray:
    """The rotation vector taking orientation ``quat`` (x, y, z, w) to pointing down, in the world frame."""
    x, y, z, w = -quat[0], -quat[1], -quat[2], quat[3]  # the inverse of the current orientation
    dx, dy, dz, dw = _DOWN
    err = np.array(
        [
            dw * x + dx * w + dy * z - dz * y,
            dw * y - dx * z + dy * w + dz * x,
            dw * z + dx * y - dy * x + dz * w,
            dw * w - dx * x - dy * y - dz * z,
        ]
    )
    return quat_to_axis_angle(err if err[3] >= 0 else -err)
