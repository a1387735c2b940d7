"""Mapping files: which env camera / state group feeds which openpi observation key.

openpi has no schema exchange: the served model config decides the observation keys
(``observation/image``, ``observation/state``, ``prompt`` for LIBERO; ``observation/
exterior_image_1_left``, ``observation/joint_position``, ... for DROID). One small TOML
file per served config names, for each key, the env camera or state groups that feed it,
so nothing is matched by position and nothing is silently zero-filled.

Schema (unknown fields are errors; every field is optional unless marked)::

    name = "libero"                 # label shown by `arena check`
    description = "..."             # free text
    replan_steps = 5                # actions executed per chunk (openpi's replan_steps);
                                    # absent: the whole chunk. --replan-steps overrides it
    action_horizon = 10             # chunk length the server must return (checked)
    prompt_key = "prompt"           # key carrying the task instruction; absent: no prompt

    [images."observation/image"]    # one table per image key
    camera = "agentview"            # required: the env camera feeding it
    size = [224, 224]               # (H, W) after aspect-preserving resize + zero padding;
                                    # absent: sent at the env's size
    rotate180 = false               # rotate by 180 degrees before resizing

    [state."observation/state"]     # one table per state key
    groups = ["eef_pos", "eef_axis_angle", "gripper_qpos"]   # required: concatenated in order
    size = 8                        # width the model expects (checked against the groups)

    [actions]
    key = "actions"                 # result key holding the (H, A) chunk
    groups = ["arm", "gripper"]     # env action groups its columns feed, in order;
                                    # absent: all env action groups in env order

Whether the names exist in a given env is checked by :mod:`arena_openpi.translator`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

import attrs

from arena.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = [
    "EMBODIMENT_MAPPINGS",
    "PACKAGED_MAPPINGS",
    "ImageEntry",
    "MappingError",
    "OpenpiMapping",
    "StateEntry",
    "load_mapping",
    "packaged_mapping",
    "resolve_mapping",
]

#: packaged mapping name -> file under arena_openpi/mappings (``--mapping NAME`` selects one)
PACKAGED_MAPPINGS: dict[str, str] = {
    "metaworld": "metaworld.toml",
    "point2d": "point2d.toml",
    "libero": "libero.toml",
    "droid": "droid.toml",
}

#: embodiment -> packaged mapping, registered as translator ``openpi:EMBODIMENT`` (auto-selected)
EMBODIMENT_MAPPINGS: dict[str, str] = {"sawyer": "metaworld", "point2d": "point2d"}

_TOP = ("name", "description", "replan_steps", "action_horizon", "prompt_key", "images", "state", "actions")
_IMAGE = ("camera", "size", "rotate180")
_STATE = ("groups", "size")
_ACTIONS = ("key", "groups")


class MappingError(ConfigError):
    """A mapping file that cannot be read or breaks the schema (names the file and the entry)."""


@attrs.frozen
class ImageEntry:
    """Image key ``key`` is env camera ``camera``, optionally rotated, resized with padding to ``size``."""

    key: str
    camera: str
    size: tuple[int, int] | None = None
    rotate180: bool = False


@attrs.frozen
class StateEntry:
    """State key ``key`` is the concatenation of env state groups ``groups``; ``size`` is checked."""

    key: str
    groups: tuple[str, ...]
    size: int | None = None


@attrs.frozen
class OpenpiMapping:
    """A parsed mapping; ``source`` names where it came from (used in every message)."""

    source: str
    name: str = ""
    description: str = ""
    replan_steps: int | None = None
    action_horizon: int | None = None
    prompt_key: str | None = None
    images: Mapping[str, ImageEntry] = attrs.field(factory=dict)
    state: Mapping[str, StateEntry] = attrs.field(factory=dict)
    actions_key: str = "actions"
    action_groups: tuple[str, ...] | None = None

    @classmethod
    def from_toml(cls, text: str, source: str) -> OpenpiMapping:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise MappingError(f"mapping {source}: not valid TOML: {exc}") from None
        return cls.from_dict(data, source)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> OpenpiMapping:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise MappingError(f"--mapping: cannot read {p}: {exc.strerror or exc}") from None
        return cls.from_toml(text, str(p))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str) -> OpenpiMapping:
        """Build from parsed TOML; MappingError names the entry and the valid fields."""
        _fields_ok(data, _TOP, source, "top level")
        images = {}
        for key, raw in _table(data.get("images", {}), source, "images").items():
            where = f'images."{key}"'
            entry = _table(raw, source, where)
            _fields_ok(entry, _IMAGE, source, f"[{where}]")
            camera = _str(entry, "camera", source, where)
            if camera is None:
                raise MappingError(f'mapping {source}: [{where}] needs camera = "NAME" (the env camera feeding it)')
            rotate = entry.get("rotate180", False)
            if not isinstance(rotate, bool):
                raise MappingError(f"mapping {source}: {where}.rotate180 must be true or false, got {rotate!r}")
            images[key] = ImageEntry(key, camera, _size2(entry.get("size"), source, f"{where}.size"), rotate)
        state = {}
        for key, raw in _table(data.get("state", {}), source, "state").items():
            where = f'state."{key}"'
            entry = _table(raw, source, where)
            _fields_ok(entry, _STATE, source, f"[{where}]")
            if "groups" not in entry:
                raise MappingError(f"mapping {source}: [{where}] needs groups = [...] (env state groups, in order)")
            state[key] = StateEntry(
                key, _names(entry["groups"], source, f"{where}.groups"), _pos_int(entry, "size", source, where)
            )
        actions = _table(data.get("actions", {}), source, "actions")
        _fields_ok(actions, _ACTIONS, source, "[actions]")
        action_groups = _names(actions["groups"], source, "actions.groups") if "groups" in actions else None
        prompt_key = _str(data, "prompt_key", source, "top level")
        taken = [*images, *state, *([prompt_key] if prompt_key else [])]
        twice = sorted({k for k in taken if taken.count(k) > 1})
        if twice:
            raise MappingError(
                f"mapping {source}: key(s) {twice} are fed twice (images, state and prompt_key must differ)"
            )
        return cls(
            source=source,
            name=_str(data, "name", source, "top level") or "",
            description=_str(data, "description", source, "top level") or "",
            replan_steps=_pos_int(data, "replan_steps", source, "top level"),
            action_horizon=_pos_int(data, "action_horizon", source, "top level"),
            prompt_key=prompt_key,
            images=images,
            state=state,
            actions_key=_str(actions, "key", source, "[actions]") or "actions",
            action_groups=action_groups,
        )


def _fields_ok(table: Mapping[str, Any], valid: tuple[str, ...], source: str, where: str) -> None:
    unknown = [k for k in table if k not in valid]
    if unknown:
        raise MappingError(
            f"mapping {source}: {where}: unknown field(s) {', '.join(map(repr, unknown))}; valid: {', '.join(valid)}"
        )


def _table(value: Any, source: str, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MappingError(f"mapping {source}: {where} must be a table, got {type(value).__name__} {value!r}")
    return value


def _str(table: Mapping[str, Any], name: str, source: str, where: str) -> str | None:
    value = table.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise MappingError(f"mapping {source}: {where}: {name} must be a non-empty string, got {value!r}")
    return value


def _pos_int(table: Mapping[str, Any], name: str, source: str, where: str) -> int | None:
    value = table.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise MappingError(f"mapping {source}: {where}: {name} must be a positive integer, got {value!r}")
    return value


def _size2(value: Any, source: str, where: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    ):
        raise MappingError(f"mapping {source}: {where} must be [HEIGHT, WIDTH] (positive integers), got {value!r}")
    return int(value[0]), int(value[1])


def _names(value: Any, source: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise MappingError(f"mapping {source}: {where} must be a non-empty list of names, got {value!r}")
    if len(set(value)) != len(value):
        raise MappingError(f"mapping {source}: {where} names an entry twice: {value!r}")
    return tuple(value)


def packaged_mapping(name: str) -> Any:
    """The packaged mapping file ``name`` (an importlib.resources Traversable)."""
    return files("arena_openpi").joinpath("mappings", PACKAGED_MAPPINGS[name])


def load_mapping(obj: Any, name: str) -> OpenpiMapping:
    """A registered translator object -> OpenpiMapping.

    Accepted: an OpenpiMapping, a TOML path (str / os.PathLike) or importlib.resources
    Traversable, a dict in the file's shape, or a zero-argument callable returning one of
    these (so a plugin can build its mapping lazily).
    """
    if isinstance(obj, OpenpiMapping):
        return obj
    if isinstance(obj, Mapping):
        return OpenpiMapping.from_dict(obj, name)
    if isinstance(obj, (str, os.PathLike)):
        return OpenpiMapping.from_file(obj)
    read_text = getattr(obj, "read_text", None)
    if callable(read_text):
        return OpenpiMapping.from_toml(read_text(encoding="utf-8"), f"{name} (packaged {Path(str(obj)).name})")
    if callable(obj):
        return load_mapping(obj(), name)
    raise MappingError(
        f"translator {name!r} is a {type(obj).__name__}; expected an OpenpiMapping, a TOML path, a dict "
        "or a callable returning one"
    )


def resolve_mapping(value: str) -> OpenpiMapping:
    """``--mapping`` value: a packaged name (``libero``, ``droid``, ``metaworld``, ``point2d``) or a TOML path."""
    if value in PACKAGED_MAPPINGS and not Path(value).exists():
        return load_mapping(packaged_mapping(value), f"--mapping {value}")
    if not Path(value).exists():
        raise MappingError(
            f"--mapping: {value!r} is neither a packaged mapping ({', '.join(PACKAGED_MAPPINGS)}) nor a file"
        )
    return OpenpiMapping.from_file(value)
