"""Mapping files: which env camera / state group / action group feeds which GR00T key.

A GR00T model names its inputs and outputs by *modality keys* (``video.ego_view``,
``state.left_arm``, ``action.left_arm``); an arena env names its cameras, state groups and
action groups. One small TOML file per embodiment connects the two by name, so a model
trained on one robot description can be evaluated on an env that calls things differently,
and nothing is matched by position or silently zero-filled.

Schema (every table and field is optional unless marked; unknown fields are errors)::

    embodiment = "sawyer"          # informative label
    description = "..."            # free text

    [language]
    key = "annotation.human.task_description"   # the language key that carries the instruction

    [video.KEY]                    # one table per video key
    camera = "corner"              # required: the env camera feeding it
    size = [224, 224]              # the model's (H, W); images are resized with padding to it

    [state.KEY]                    # one table per state key; exactly one of groups / joints
    groups = ["hand_pos"]          # env state groups, concatenated in this order
    joints = ["hand_pos.x", "y"]   # or single elements, GROUP.ELEMENT or a bare unique ELEMENT
    size = 3                       # the width the model expects (checked against the sources)

    [action.KEY]                   # one table per action key, same fields as state:
    groups = ["ee_delta"]          # env action groups its columns go to, in order

This module only parses and checks the file's structure; whether the names exist in a
given env is checked by :mod:`arena_gr00t.translator` against the env spec.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from arena.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = [
    "MappingError",
    "VideoEntry",
    "VectorEntry",
    "Gr00tMapping",
    "load_mapping",
    "packaged_mapping",
    "PACKAGED_MAPPINGS",
]

#: embodiment -> packaged mapping file (under arena_gr00t/mappings), registered as gr00t:EMBODIMENT
PACKAGED_MAPPINGS: dict[str, str] = {"sawyer": "sawyer.toml", "point2d": "point2d.toml"}

_TOP_FIELDS = ("embodiment", "description", "language", "video", "state", "action")
_VIDEO_FIELDS = ("camera", "size")
_VECTOR_FIELDS = ("groups", "joints", "size")


class MappingError(ConfigError):
    """A mapping file that cannot be read or does not follow the schema (names the file and entry)."""


@attrs.frozen
class VideoEntry:
    """Video key ``key`` is fed by env camera ``camera``, resized with padding to ``size`` (H, W)."""

    key: str
    camera: str
    size: tuple[int, int] | None = None


@attrs.frozen
class VectorEntry:
    """A state or action key fed by whole env groups or by single elements (joints), in order.

    ``size`` is the width the model uses for the key; None leaves it to the sources.
    """

    key: str
    groups: tuple[str, ...] | None = None
    joints: tuple[str, ...] | None = None
    size: int | None = None

    @property
    def sources(self) -> tuple[str, ...]:
        return self.groups if self.groups is not None else self.joints or ()


@attrs.frozen
class Gr00tMapping:
    """A parsed mapping file; ``source`` names where it came from (used in every message)."""

    source: str
    embodiment: str | None = None
    description: str = ""
    language_key: str | None = None
    video: Mapping[str, VideoEntry] = attrs.field(factory=dict)
    state: Mapping[str, VectorEntry] = attrs.field(factory=dict)
    action: Mapping[str, VectorEntry] = attrs.field(factory=dict)

    @classmethod
    def from_toml(cls, text: str, source: str) -> Gr00tMapping:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise MappingError(f"mapping {source}: not valid TOML: {exc}") from None
        return cls.from_dict(data, source)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Gr00tMapping:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise MappingError(f"--mapping: cannot read {p}: {exc.strerror or exc}") from None
        return cls.from_toml(text, str(p))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str) -> Gr00tMapping:
        """Build from parsed TOML, raising MappingError naming the entry and the valid fields."""
        _fields_ok(data, _TOP_FIELDS, source, "top level")
        embodiment = _opt_str(data, "embodiment", source, "embodiment")
        description = _opt_str(data, "description", source, "description") or ""
        language_key = None
        if "language" in data:
            lang = _table(data["language"], source, "language")
            _fields_ok(lang, ("key",), source, "[language]")
            if "key" not in lang:
                raise MappingError(f'mapping {source}: [language] needs key = "..." (the instruction\'s language key)')
            language_key = _opt_str(lang, "key", source, "language.key")
        video = {}
        for key, raw in _table(data.get("video", {}), source, "video").items():
            where = f"video.{key}"
            entry = _table(raw, source, where)
            _fields_ok(entry, _VIDEO_FIELDS, source, f"[{where}]")
            camera = _opt_str(entry, "camera", source, f"{where}.camera")
            if camera is None:
                raise MappingError(f'mapping {source}: [{where}] needs camera = "NAME" (the env camera feeding it)')
            video[key] = VideoEntry(key, camera, _size2(entry.get("size"), source, f"{where}.size"))
        state = {k: _vector(k, v, source, "state") for k, v in _table(data.get("state", {}), source, "state").items()}
        action = {
            k: _vector(k, v, source, "action") for k, v in _table(data.get("action", {}), source, "action").items()
        }
        return cls(source, embodiment, description, language_key, video, state, action)


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


def _opt_str(table: Mapping[str, Any], name: str, source: str, where: str) -> str | None:
    value = table.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise MappingError(f"mapping {source}: {where} must be a non-empty string, got {value!r}")
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


def _vector(key: str, raw: Any, source: str, modality: str) -> VectorEntry:
    where = f"{modality}.{key}"
    entry = _table(raw, source, where)
    _fields_ok(entry, _VECTOR_FIELDS, source, f"[{where}]")
    if ("groups" in entry) == ("joints" in entry):
        raise MappingError(
            f"mapping {source}: [{where}] needs exactly one of groups = [...] (env {modality} groups) "
            f"or joints = [...] (GROUP.ELEMENT names)"
        )
    groups = _names(entry["groups"], source, f"{where}.groups") if "groups" in entry else None
    joints = _names(entry["joints"], source, f"{where}.joints") if "joints" in entry else None
    size = entry.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
        raise MappingError(f"mapping {source}: {where}.size must be a positive integer, got {size!r}")
    return VectorEntry(key, groups, joints, size)


def packaged_mapping(embodiment: str) -> Any:
    """The packaged mapping file of ``embodiment`` (an importlib.resources Traversable)."""
    from importlib.resources import files

    return files("arena_gr00t").joinpath("mappings", PACKAGED_MAPPINGS[embodiment])


def load_mapping(obj: Any, name: str) -> Gr00tMapping:
    """A registered translator object -> Gr00tMapping.

    Accepted: a Gr00tMapping, a path (str / os.PathLike) or importlib.resources Traversable
    of a TOML file, a dict in the file's shape, or a zero-argument callable returning any
    of these (so a plugin can build its mapping lazily).
    """
    if isinstance(obj, Gr00tMapping):
        return obj
    if isinstance(obj, Mapping):
        return Gr00tMapping.from_dict(obj, name)
    if isinstance(obj, (str, os.PathLike)):
        return Gr00tMapping.from_file(obj)
    read_text = getattr(obj, "read_text", None)
    if callable(read_text):
        return Gr00tMapping.from_toml(read_text(encoding="utf-8"), f"{name} ({obj})")
    if callable(obj):
        factory: Callable[[], Any] = obj
        return load_mapping(factory(), name)
    raise MappingError(
        f"translator {name!r} is a {type(obj).__name__}; expected a Gr00tMapping, a TOML path, "
        f"a dict or a callable returning one"
    )
