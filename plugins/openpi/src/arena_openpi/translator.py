"""Canonical Observation rows <-> openpi observation maps and action chunks, per a mapping.

A :class:`Translator` binds an :class:`~arena_openpi.mapping.OpenpiMapping` to an env spec.
Everything that does not fit (a camera or group the env lacks, a size that disagrees, an
action group left unfed) becomes a problem naming the key, the expected and the received
shape, so ``arena check`` shows it before any episode runs. Against the reference server
(whose metadata states its layout) :meth:`Translator.restrict` checks each key the server
reads and drops keys it does not read, so cameras nobody reads are never rendered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from arena.arrays import take_rows, to_numpy
from arena.contract import EnvSpec, Observation
from arena.errors import PolicyError
from arena.images import resize_with_pad, rotate180
from arena_openpi.layout import ServedLayout
from arena_openpi.mapping import ImageEntry, OpenpiMapping, StateEntry

__all__ = ["Translator", "shape_text"]


def shape_text(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


@attrs.frozen
class KeySpec:
    """What the translator sends under one key: kind, shape and the env names feeding it."""

    key: str
    kind: str
    shape: tuple[int, ...]
    source: str


class Translator:
    """Encode observation rows and decode action chunks for one mapping on one env spec."""

    def __init__(self, mapping: OpenpiMapping, spec: EnvSpec) -> None:
        self.mapping = mapping
        self.spec = spec
        self.problems: list[str] = []
        self.not_read: list[str] = []  # mapped keys the server said it does not read
        self.images: list[ImageEntry] = []
        self.state: list[StateEntry] = []
        self.keys: dict[str, KeySpec] = {}
        where = f"mapping {mapping.name or mapping.source}"
        for entry in mapping.images.values():
            if entry.camera not in spec.cameras:
                self.problems.append(
                    f"{entry.key}: {where} reads env camera {entry.camera!r}, which env {spec.name} lacks "
                    f"(env cameras: {', '.join(spec.cameras) or 'none'})"
                )
                continue
            h, w = entry.size or spec.cameras[entry.camera]
            self.images.append(entry)
            self.keys[entry.key] = KeySpec(entry.key, "image", (h, w, 3), f"camera {entry.camera}")
        for entry in mapping.state.values():
            missing = [g for g in entry.groups if g not in spec.state_groups]
            if missing:
                self.problems.append(
                    f"{entry.key}: {where} reads env state group(s) {missing}, which env {spec.name} lacks "
                    f"(env groups: {_groups_text(spec, spec.state_groups)})"
                )
                continue
            size = sum(spec.state_size(g) for g in entry.groups)
            if entry.size is not None and entry.size != size:
                self.problems.append(
                    f"{entry.key}: {where} expects shape {shape_text((entry.size,))}, env groups "
                    f"{_groups_text(spec, entry.groups)} give {shape_text((size,))}"
                )
                continue
            self.state.append(entry)
            self.keys[entry.key] = KeySpec(entry.key, "state", (size,), _groups_short(spec, entry.groups))
        self.prompt_key = mapping.prompt_key
        if self.prompt_key:
            self.keys[self.prompt_key] = KeySpec(self.prompt_key, "prompt", (), "instruction")
        self.action_key = mapping.actions_key
        self.action_groups = mapping.action_groups or tuple(g.name for g in spec.action_groups)
        self.action_width, self.action_columns = self._action_columns()

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
                f"{' and '.join(detail)} (env action groups: {_action_text(self.spec)})"
            )
            return self.spec.action_dim, np.arange(self.spec.action_dim)
        columns = np.empty(self.spec.action_dim, np.int64)
        offset = 0
        for name in self.action_groups:
            sl = self.spec.action_slice(name)
            columns[sl] = np.arange(offset, offset + sl.stop - sl.start)
            offset += sl.stop - sl.start
        return offset, columns

    # ------------------------------------------------------------------ preflight

    def restrict(self, layout: ServedLayout) -> list[str]:
        """Check the mapping against a reference server's layout; send only the keys it reads."""
        problems: list[str] = []
        served = f"server ({layout.policy} on {layout.env})"
        for key, want in layout.entries.items():
            have = self.keys.get(key)
            if have is None:
                expected = f"{want.kind} {shape_text(want.shape)}" if want.kind != "prompt" else "the instruction"
                problems.append(
                    f"{key}: {served} reads it ({expected}), the mapping {self.mapping.name or self.mapping.source} "
                    "does not produce it"
                )
            elif have.kind != want.kind:
                problems.append(f"{key}: {served} expects {want.kind}, the mapping sends {have.kind} ({have.source})")
            elif want.kind != "prompt" and have.shape != want.shape:
                problems.append(
                    f"{key}: {served} expects shape {shape_text(want.shape)}, the mapping sends "
                    f"{shape_text(have.shape)} ({have.source})"
                )
            elif want.kind == "state" and want.groups:
                entry = next(e for e in self.state if e.key == key)
                if tuple(entry.groups) != tuple(want.groups):
                    problems.append(
                        f"{key}: {served} splits it into groups {list(want.groups)}, the mapping concatenates "
                        f"{list(entry.groups)}"
                    )
        if tuple(layout.action_groups) != tuple(self.action_groups):
            problems.append(
                f"{self.action_key}: {served} returns columns of action groups {list(layout.action_groups)}, "
                f"the mapping expects {list(self.action_groups)}"
            )
        self.not_read = [k for k in self.keys if k not in layout.entries]
        self.images = [e for e in self.images if e.key in layout.entries]
        self.state = [e for e in self.state if e.key in layout.entries]
        if self.prompt_key not in layout.entries:
            self.prompt_key = None
        self.keys = {k: v for k, v in self.keys.items() if k in layout.entries}
        return problems

    @property
    def cameras(self) -> dict[str, tuple[int, int] | None]:
        """Env cameras read; None because any size is resized with padding to the model's."""
        return {e.camera: None for e in self.images}

    @property
    def state_sizes(self) -> dict[str, int | None]:
        return {g: self.spec.state_size(g) for e in self.state for g in e.groups}

    @property
    def uses_instruction(self) -> bool:
        return self.prompt_key is not None

    def info(self) -> dict[str, str]:
        out = {
            f"key {k}": f"{v.kind} {shape_text(v.shape)} <- {v.source}" if v.kind != "prompt" else f"str <- {v.source}"
            for k, v in self.keys.items()
        }
        for e in self.images:
            steps = [s for s in ("rotate 180" if e.rotate180 else "", "resize with pad" if e.size else "") if s]
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
                raise PolicyError(f"openpi: observation has no image from camera {e.camera!r} (for key {e.key})")
            imgs = to_numpy(take_rows(observation.images[e.camera], idx), np.uint8)
            if e.rotate180:
                imgs = rotate180(imgs)
            if e.size is not None:
                imgs = resize_with_pad(imgs, *e.size)
            columns[e.key] = imgs
        for e in self.state:
            parts = [to_numpy(take_rows(observation.state[g], idx), np.float32) for g in e.groups]
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

    def reply_actions(self, result: Mapping[str, Any]) -> np.ndarray:
        """The (H, A) chunk of one result map; PolicyError naming the key and shapes otherwise."""
        if self.action_key not in result:
            raise PolicyError(f"openpi: reply has no {self.action_key!r} key (keys: {sorted(map(str, result))})")
        value = result[self.action_key]
        if not isinstance(value, np.ndarray) or value.ndim != 2 or value.dtype.kind not in "fiu":
            got = f"{value.dtype} {shape_text(value.shape)}" if isinstance(value, np.ndarray) else type(value).__name__
            raise PolicyError(f"openpi: reply {self.action_key!r}: expected a numeric (H, A) array, received {got}")
        if value.shape[1] != self.action_width:
            raise PolicyError(
                f"openpi: reply {self.action_key!r}: expected shape (H, {self.action_width}) for action groups "
                f"{_action_text(self.spec, self.action_groups)}, received {shape_text(value.shape)}"
            )
        return value

    def decode(self, results: Sequence[Mapping[str, Any]], horizon: int) -> np.ndarray:
        """(M, horizon, A) in the env's action order from M result maps."""
        out = np.empty((len(results), horizon, self.spec.action_dim), np.float32)
        for i, result in enumerate(results):
            actions = self.reply_actions(result)
            if actions.shape[0] != horizon:
                raise PolicyError(
                    f"openpi: reply {self.action_key!r}: expected shape {shape_text((horizon, self.action_width))} "
                    f"(the chunk length established at preflight), received {shape_text(actions.shape)}"
                )
            out[i] = actions[:, self.action_columns]
        return out


def _groups_text(spec: EnvSpec, groups: Sequence[str] | Mapping[str, Any]) -> str:
    return "+".join(f"{g}({spec.state_size(g)})" for g in groups) or "none"


def _groups_short(spec: EnvSpec, groups: Sequence[str]) -> str:
    if len(groups) <= 4:
        return "groups " + _groups_text(spec, groups)
    first, last = groups[0], groups[-1]
    return f"{len(groups)} groups {first}({spec.state_size(first)})+...+{last}({spec.state_size(last)})"


def _action_text(spec: EnvSpec, names: Sequence[str] | None = None) -> str:
    sizes = {g.name: g.size for g in spec.action_groups}
    return "+".join(f"{n}({sizes.get(n, '?')})" for n in (names or sizes)) or "none"
