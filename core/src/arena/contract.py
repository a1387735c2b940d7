"""The canonical observation/action contract every env and policy speaks.

Everything is addressed by NAME: cameras, state groups and action groups carry
names (and their elements carry joint/element names), so translators map a
model's keys onto an env's groups without relying on positions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs
import numpy as np

from arena.arrays import Array, shape_of, take_rows, to_numpy
from arena.errors import ContractError

__all__ = ["Task", "ActionGroup", "EnvSpec", "Observation", "ActionChunk"]


def _names(value: Sequence[str]) -> tuple[str, ...]:
    return tuple(str(v) for v in value)


@attrs.frozen
class Task:
    """One task of an env family: its id and the language instruction given to the policy."""

    name: str
    instruction: str


@attrs.frozen
class ActionGroup:
    """A named slice of the action vector (e.g. ``ee_delta``: x, y, z) with its bounds.

    ``convention`` (optional) says what the numbers mean, in vla-eval's vocabulary
    (:mod:`arena.conventions`: ``delta_xyz``, ``axis_angle``, ``binary_close_positive``, ...),
    so a server declaring another one is refused before any episode runs.
    """

    name: str
    elements: tuple[str, ...] = attrs.field(converter=_names)
    low: np.ndarray = attrs.field(converter=lambda a: np.asarray(a, dtype=np.float32), eq=False)
    high: np.ndarray = attrs.field(converter=lambda a: np.asarray(a, dtype=np.float32), eq=False)
    convention: str | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        n = len(self.elements)
        for field, arr in (("low", self.low), ("high", self.high)):
            if arr.shape != (n,):
                raise ContractError(
                    f"action group {self.name!r}: {field} must have shape ({n},) to match its "
                    f"{n} elements, got {arr.shape}"
                )

    @property
    def size(self) -> int:
        return len(self.elements)


@attrs.frozen
class EnvSpec:
    """What an env provides and accepts; the reference both sides are checked against.

    ``cameras`` maps camera name -> (height, width) of the uint8 RGB image.
    ``state_groups`` maps group name -> element names (the group's size is their count).
    ``action_groups`` are in the order the simulator expects them concatenated.
    ``hold_action`` is what an env waiting for a chunk executes (synced-batch
    scheduling); zeros suit delta control, absolute control should override it.
    ``state_conventions`` maps state group -> convention (``absolute_xyz``, ``quaternion_xyzw``,
    ...; see :mod:`arena.conventions`), for the groups whose meaning a model could mistake.
    """

    name: str
    embodiment: str
    cameras: Mapping[str, tuple[int, int]]
    state_groups: Mapping[str, tuple[str, ...]]
    action_groups: tuple[ActionGroup, ...] = attrs.field(converter=tuple)
    tasks: tuple[Task, ...] = attrs.field(converter=tuple)
    max_episode_steps: int
    control_hz: float = 0.0
    success_rule: str = "success reported by the env ends the episode; reaching max steps is a failure"
    hold_action: np.ndarray | None = attrs.field(default=None, eq=False)
    state_conventions: Mapping[str, str] = attrs.field(factory=dict, kw_only=True)

    def __attrs_post_init__(self) -> None:
        unknown = sorted(set(self.state_conventions) - set(self.state_groups))
        if unknown:
            raise ContractError(f"env {self.name!r}: state_conventions name unknown state group(s) {unknown}")
        if not self.tasks:
            raise ContractError(f"env {self.name!r}: tasks must not be empty")
        if self.max_episode_steps < 1:
            raise ContractError(f"env {self.name!r}: max_episode_steps must be >= 1, got {self.max_episode_steps}")
        seen: set[str] = set()
        for g in self.action_groups:
            if g.name in seen:
                raise ContractError(f"env {self.name!r}: duplicate action group {g.name!r}")
            seen.add(g.name)
        if self.hold_action is not None and np.shape(self.hold_action) != (self.action_dim,):
            raise ContractError(
                f"env {self.name!r}: hold_action must have shape ({self.action_dim},), got {np.shape(self.hold_action)}"
            )

    @property
    def action_dim(self) -> int:
        return sum(g.size for g in self.action_groups)

    @property
    def action_low(self) -> np.ndarray:
        return np.concatenate([g.low for g in self.action_groups]).astype(np.float32)

    @property
    def action_high(self) -> np.ndarray:
        return np.concatenate([g.high for g in self.action_groups]).astype(np.float32)

    @property
    def hold(self) -> np.ndarray:
        if self.hold_action is None:
            return np.zeros(self.action_dim, dtype=np.float32)
        return np.asarray(self.hold_action, dtype=np.float32)

    def state_size(self, group: str) -> int:
        return len(self.state_groups[group])

    def action_slice(self, group: str) -> slice:
        """Where group ``group`` sits in the concatenated action vector."""
        start = 0
        for g in self.action_groups:
            if g.name == group:
                return slice(start, start + g.size)
            start += g.size
        known = ", ".join(g.name for g in self.action_groups)
        raise ContractError(f"env {self.name!r} has no action group {group!r} (known: {known})")

    def task(self, name: str) -> Task:
        for t in self.tasks:
            if t.name == name:
                return t
        raise ContractError(f"env {self.name!r} has no task {name!r}")

    def to_dict(self) -> dict:
        """A JSON-ready description (for run configs and `arena check`)."""
        return {
            "name": self.name,
            "embodiment": self.embodiment,
            "cameras": {k: list(v) for k, v in self.cameras.items()},
            "state_groups": {k: list(v) for k, v in self.state_groups.items()},
            "action_groups": [
                {
                    "name": g.name,
                    "elements": list(g.elements),
                    "low": g.low.tolist(),
                    "high": g.high.tolist(),
                    **({"convention": g.convention} if g.convention else {}),
                }
                for g in self.action_groups
            ],
            **({"state_conventions": dict(self.state_conventions)} if self.state_conventions else {}),
            "tasks": [{"name": t.name, "instruction": t.instruction} for t in self.tasks],
            "max_episode_steps": self.max_episode_steps,
            "control_hz": self.control_hz,
            "success_rule": self.success_rule,
        }


@attrs.define
class Observation:
    """A batch of N observations (one row per env slot).

    ``images[camera]`` is uint8 (N, H, W, 3); ``state[group]`` float32 (N, D);
    ``instruction`` has N strings; ``env_ids`` the N slot ids. Rows of slots that
    were not rendered on this step hold stale images: readers use the mask they
    were given (see :meth:`arena.policy.Policy.infer`).
    """

    images: dict[str, Array]
    state: dict[str, Array]
    instruction: list[str]
    env_ids: np.ndarray = attrs.field(converter=lambda a: np.asarray(a, dtype=np.int64))

    @property
    def num_envs(self) -> int:
        return len(self.env_ids)

    def validate(self, spec: EnvSpec) -> None:
        """Raise ContractError naming the field, the expected and the received shape."""
        n = self.num_envs
        if len(self.instruction) != n:
            raise ContractError(f"observation.instruction: expected {n} strings, got {len(self.instruction)}")
        for cam, (h, w) in spec.cameras.items():
            if cam in self.images:
                got = shape_of(self.images[cam])
                if got != (n, h, w, 3):
                    raise ContractError(f"observation.images[{cam!r}]: expected shape {(n, h, w, 3)}, got {got}")
        for group, elements in spec.state_groups.items():
            if group not in self.state:
                raise ContractError(f"observation.state: missing group {group!r}")
            got = shape_of(self.state[group])
            if got != (n, len(elements)):
                raise ContractError(f"observation.state[{group!r}]: expected shape {(n, len(elements))}, got {got}")

    def rows(self, rows: Sequence[int] | np.ndarray) -> Observation:
        """The sub-batch of rows ``rows`` (positions, not env ids)."""
        idx = np.asarray(rows, dtype=np.int64)
        return Observation(
            images={k: take_rows(v, idx) for k, v in self.images.items()},
            state={k: take_rows(v, idx) for k, v in self.state.items()},
            instruction=[self.instruction[i] for i in idx],
            env_ids=self.env_ids[idx],
        )


@attrs.define
class ActionChunk:
    """Actions (M, horizon, A) in the env's action order for the M envs ``env_ids``.

    ``lost`` maps env ids whose episode cannot go on to the cause (e.g. a protocol session
    that dropped mid-episode): the evaluator drops their rows (any values) and runs those
    episodes again with their seeds, as it does for an env worker that died.
    """

    actions: Array
    env_ids: np.ndarray = attrs.field(converter=lambda a: np.asarray(a, dtype=np.int64))
    lost: Mapping[int, str] = attrs.field(factory=dict, kw_only=True)

    def __attrs_post_init__(self) -> None:
        shape = shape_of(self.actions)
        if len(shape) != 3:
            raise ContractError(f"ActionChunk.actions: expected 3 dims (envs, horizon, action_dim), got shape {shape}")
        if shape[0] != len(self.env_ids):
            raise ContractError(
                f"ActionChunk.actions: expected {len(self.env_ids)} rows (one per env id), got {shape[0]}"
            )

    @property
    def horizon(self) -> int:
        return int(self.actions.shape[1])

    def numpy(self) -> np.ndarray:
        return to_numpy(self.actions, np.float32)
