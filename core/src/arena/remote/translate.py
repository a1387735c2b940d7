"""Canonical Observation rows <-> native observation maps and action columns, per a key mapping.

A :class:`KeyTranslator` binds a :class:`~arena.remote.keymap.KeyMapping` to an env spec.
Everything that does not fit (a camera or group the env lacks, a size that disagrees, an
action group left unfed) becomes a problem naming the key, the expected and the received
shape, so ``arena check`` shows it before any episode runs. The image pipeline (rotate
180 degrees, aspect-preserving resize with zero padding) is applied per image key. A family
subclasses it for its reply format (openpi: a result map; OpenVLA: a bare array).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from arena.arrays import take_rows, to_numpy
from arena.contract import EnvSpec, Observation
from arena.conventions import INVERSES, convert
from arena.errors import PolicyError
from arena.images import flip, resize_with_pad
from arena.remote.keymap import ImageEntry, KeyMapping, StateEntry
from arena.remote.names import Run, camera_problem, resolve_runs, run_width, runs_text

__all__ = ["KeyTranslator", "KeySpec", "shape_text", "action_text", "action_conversions", "apply_conversions"]


def shape_text(shape: Sequence[int | str]) -> str:
    """``(224, 224, 3)``, ``(8,)``, ``(B, 1, 3)``: shapes as messages print them (names for free axes)."""
    return (
        "("
        + ", ".join(s if isinstance(s, str) else str(int(s)) for s in shape)
        + ("," if len(shape) == 1 else "")
        + ")"
    )


@attrs.frozen
class KeySpec:
    """What the translator sends under one key: kind, shape and the env names feeding it."""

    key: str
    kind: str
    shape: tuple[int, ...]
    source: str


def action_conversions(
    convert_table: Mapping[str, str], spec: EnvSpec, where: str, problems: list[str]
) -> list[tuple[slice, str]]:
    """(env action columns, conversion) per ``[convert]`` entry; an unknown group becomes a problem."""
    names = {g.name for g in spec.action_groups}
    for group in convert_table:
        if group not in names:
            problems.append(
                f"[convert] {group}: {where} converts env action group {group!r}, which env {spec.name} lacks "
                f"(env action groups: {', '.join(sorted(names))})"
            )
    return [(spec.action_slice(g), c) for g, c in convert_table.items() if g in names]


def apply_conversions(actions: np.ndarray, conversions: Sequence[tuple[slice, str]]) -> np.ndarray:
    """Convert the columns of (..., A) float32 ``actions`` in place; returns them."""
    for cols, name in conversions:
        actions[..., cols] = convert(name, actions[..., cols])
    return actions


class KeyTranslator:
    """Encode observation rows and map action columns for one mapping on one env spec.

    ``label`` (``openpi``, ``openvla``) starts the messages of errors raised while running.
    """

    label = "remote"

    def __init__(self, mapping: KeyMapping, spec: EnvSpec) -> None:
        self.mapping = mapping
        self.spec = spec
        self.problems: list[str] = []
        self.not_read: list[str] = []  # mapped keys the server said it does not read
        self.images: list[ImageEntry] = []
        self.state: list[StateEntry] = []
        self.keys: dict[str, KeySpec] = {}
        where = f"mapping {mapping.name or mapping.source}"
        env_groups = spec.state_groups
        self.state_runs: dict[str, list[Run]] = {}
        for entry in mapping.images.values():
            problem = camera_problem(entry.key, entry.camera, spec, where)
            if problem:
                self.problems.append(problem)
                continue
            h, w = entry.size or spec.cameras[entry.camera]
            self.images.append(entry)
            self.keys[entry.key] = KeySpec(entry.key, "image", (h, w, 3), f"camera {entry.camera}")
        for entry in mapping.state.values():
            runs, problems = resolve_runs(
                entry.key, env_groups, "state", spec.name, where, groups=entry.groups, joints=entry.joints
            )
            if problems:
                self.problems.extend(problems)
                continue
            size = run_width(runs, env_groups)
            if entry.size is not None and entry.size != size:
                self.problems.append(
                    f"{entry.key}: {where} expects shape {shape_text((entry.size,))}, env "
                    f"{runs_text(runs, env_groups)} give {shape_text((size,))}"
                )
                continue
            self.state.append(entry)
            self.state_runs[entry.key] = runs
            self.keys[entry.key] = KeySpec(entry.key, "state", (size,), _groups_short(runs, env_groups))
        self.prompt_key = mapping.prompt_key
        if self.prompt_key:
            self.keys[self.prompt_key] = KeySpec(self.prompt_key, "prompt", (), "instruction")
        self.action_key = mapping.actions_key
        self.action_groups = mapping.action_groups or tuple(g.name for g in spec.action_groups)
        self.action_width, self.action_columns = self._action_columns()
        #: (env action columns, conversion) of the mapping's [convert] table
        self.conversions = action_conversions(mapping.convert, spec, where, self.problems)

    def _action_columns(self) -> tuple[int, np.ndarray]:
        """(reply width, reply column of each env action column)."""
        env_groups = [g.name for g in self.spec.action_groups]
        unknown = [g for g in self.action_groups if g not in env_groups]
        missing = [g for g in env_groups if g not in self.action_groups]
        if unknown or missing:
            detail = []
            if unknown:
                detail.append(f"names group(s) {unknown} the env lacks")
            if missing:
                detail.append(f"leaves env group(s) {missing} unfed")
            self.problems.append(
                f"{self.mapping.actions_key}: mapping's [actions] groups {list(self.action_groups)} "
                f"{' and '.join(detail)} (env action groups: {action_text(self.spec)})"
            )
            return self.spec.action_dim, np.arange(self.spec.action_dim)
        columns = np.empty(self.spec.action_dim, np.int64)
        offset = 0
        for name in self.action_groups:
            sl = self.spec.action_slice(name)
            columns[sl] = np.arange(offset, offset + sl.stop - sl.start)
            offset += sl.stop - sl.start
        return offset, columns

    @property
    def cameras(self) -> dict[str, tuple[int, int] | None]:
        """Env cameras read; None because any size is resized with padding to the model's."""
        return {e.camera: None for e in self.images}

    @property
    def state_sizes(self) -> dict[str, int | None]:
        return {g: self.spec.state_size(g) for e in self.state for g, _ in self.state_runs[e.key]}

    @property
    def uses_instruction(self) -> bool:
        return self.prompt_key is not None

    def info(self) -> dict[str, str]:
        out = {
            f"key {k}": f"{v.kind} {shape_text(v.shape)} <- {v.source}" if v.kind != "prompt" else f"str <- {v.source}"
            for k, v in self.keys.items()
        }
        for e in self.images:
            steps = e.steps()
            if steps:
                out[f"key {e.key}"] += f" ({', '.join(steps)})"
        for k in self.not_read:
            out[f"key {k}"] = "not sent: the server does not read it"
        out[f"reply {self.action_key}"] = f"columns -> env action groups {list(self.action_groups)}"
        return out

    # ------------------------------------------------------------------ requests

    def encode(self, observation: Observation, rows: Sequence[int] | np.ndarray) -> list[dict[str, Any]]:
        """One openpi observation map per row in ``rows``."""
        idx = np.asarray(rows, dtype=np.int64)
        columns: dict[str, Any] = {}
        for e in self.images:
            if e.camera not in observation.images:
                raise PolicyError(f"{self.label}: observation has no image from camera {e.camera!r} (for key {e.key})")
            imgs = to_numpy(take_rows(observation.images[e.camera], idx), np.uint8)
            if any(e.flips):
                imgs = flip(imgs, *e.flips)
            if e.size is not None:
                imgs = resize_with_pad(imgs, *e.size)
            columns[e.key] = imgs
        for e in self.state:
            parts = [
                to_numpy(take_rows(observation.state[g], idx), np.float32)[:, slice(None) if cols is None else cols]
                for g, cols in self.state_runs[e.key]
            ]
            columns[e.key] = np.concatenate(parts, axis=1) if len(parts) > 1 else np.ascontiguousarray(parts[0])
        out = []
        for i, r in enumerate(idx):
            obs: dict[str, Any] = {k: v[i] for k, v in columns.items()}
            if self.prompt_key is not None:
                obs[self.prompt_key] = str(observation.instruction[r])
            out.append(obs)
        return out

    def probe_observation(self) -> dict[str, Any]:
        """A zero observation of exactly the mapped keys and shapes (the first task's prompt)."""
        obs: dict[str, Any] = {}
        for k, v in self.keys.items():
            if v.kind == "image":
                obs[k] = np.zeros(v.shape, np.uint8)
            elif v.kind == "state":
                obs[k] = np.zeros(v.shape, np.float32)
            else:
                obs[k] = self.spec.tasks[0].instruction
        return obs

    def check_actions(self, value: Any, what: str, ndim: int = 2) -> np.ndarray:
        """``value`` as a numeric array of ``ndim`` dims whose last is the reply width; PolicyError otherwise."""
        if not isinstance(value, np.ndarray) or value.ndim != ndim or value.dtype.kind not in "fiu":
            got = f"{value.dtype} {shape_text(value.shape)}" if isinstance(value, np.ndarray) else type(value).__name__
            want = "(H, A)" if ndim == 2 else "(A,)"
            raise PolicyError(f"{self.label}: {what}: expected a numeric {want} array, received {got}")
        if value.shape[-1] != self.action_width:
            want = f"(H, {self.action_width})" if ndim == 2 else f"({self.action_width},)"
            raise PolicyError(
                f"{self.label}: {what}: expected shape {want} for action groups "
                f"{action_text(self.spec, self.action_groups)}, received {shape_text(value.shape)}"
            )
        return value

    def to_env(self, actions: np.ndarray) -> np.ndarray:
        """Reply columns (..., width) -> the env's action order (..., A), float32, [convert] applied."""
        return apply_conversions(np.asarray(actions, np.float32)[..., self.action_columns], self.conversions)

    # ------------------------------------------------------------------ the server's side

    def to_reply(self, actions: np.ndarray) -> np.ndarray:
        """The env's action order (..., A) -> reply columns (..., width): what a served policy answers."""
        acts = np.asarray(actions, np.float32)
        if self.conversions:  # answer in the server's convention: undo what to_env converts
            acts = apply_conversions(acts.copy(), [(cols, INVERSES[name]) for cols, name in self.conversions])
        out = np.zeros((*acts.shape[:-1], self.action_width), np.float32)
        out[..., self.action_columns] = acts
        return out

    def decode_observation(
        self, native: Mapping[str, Any], reads_cameras: Sequence[str] = (), reads_state: Sequence[str] = ()
    ) -> Observation:
        """One native observation map -> a one-row canonical Observation (a reference server's side).

        Images are turned back (the client's 180-degree rotation undone) and resized with
        padding to the env camera's size; state keys are split into their groups. A camera
        or state group the served policy reads (``reads_*``) that the map does not carry is
        a PolicyError naming the key, never a silent zero; others are zeros.
        """
        spec = self.spec
        images = {cam: np.zeros((1, h, w, 3), np.uint8) for cam, (h, w) in spec.cameras.items()}
        for e in self.images:
            value = native.get(e.key)
            if value is None:
                if e.camera in reads_cameras:
                    raise PolicyError(f"{self.label}: the request has no {e.key!r} (camera {e.camera})")
                continue
            if not isinstance(value, np.ndarray) or value.dtype != np.uint8 or value.ndim != 3 or value.shape[2] != 3:
                got = (
                    f"{value.dtype} {shape_text(value.shape)}"
                    if isinstance(value, np.ndarray)
                    else type(value).__name__
                )
                raise PolicyError(f"{self.label}: {e.key}: expected a uint8 (H, W, 3) image, received {got}")
            frames = np.array(value[None])  # decoded arrays are read-only views of the body
            frames = flip(frames, *e.flips) if any(e.flips) else frames
            images[e.camera] = resize_with_pad(frames, *spec.cameras[e.camera])
        state = {g: np.zeros((1, spec.state_size(g)), np.float32) for g in spec.state_groups}
        given: set[str] = set()
        for e in self.state:
            if e.key not in native:
                continue
            vec = np.asarray(native[e.key], np.float32).reshape(-1)
            runs = self.state_runs[e.key]
            env_groups = spec.state_groups
            width = run_width(runs, env_groups)
            if vec.shape != (width,):
                raise PolicyError(
                    f"{self.label}: {e.key}: expected shape {shape_text((width,))} for "
                    f"{runs_text(runs, env_groups)}, received {shape_text(vec.shape)}"
                )
            pos = 0
            for g, cols in runs:
                n = spec.state_size(g) if cols is None else len(cols)
                state[g][0, slice(None) if cols is None else cols] = vec[pos : pos + n]
                pos += n
                given.add(g)
        missing = sorted(set(reads_state) - given)
        if missing:
            raise PolicyError(f"{self.label}: the served policy reads state group(s) {missing}; the request has none")
        instruction = native.get(self.prompt_key, "") if self.prompt_key else ""
        if not isinstance(instruction, str):
            raise PolicyError(
                f"{self.label}: {self.prompt_key}: expected a string, received {type(instruction).__name__}"
            )
        return Observation(images=images, state=state, instruction=[instruction], env_ids=np.zeros(1))


def _groups_short(runs: Sequence[Run], env_groups: Mapping[str, Sequence[str]]) -> str:
    if len(runs) <= 4:
        return runs_text(runs, env_groups)
    (first, _), (last, _) = runs[0], runs[-1]
    return f"{len(runs)} groups {first}({len(env_groups[first])})+...+{last}({len(env_groups[last])})"


def action_text(spec: EnvSpec, names: Sequence[str] | None = None) -> str:
    """``arm(6)+gripper(1)`` for messages."""
    sizes = {g.name: g.size for g in spec.action_groups}
    return "+".join(f"{n}({sizes.get(n, '?')})" for n in (names or sizes)) or "none"
