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
    rotate180 = false              # rotate by 180 degrees first
    mirror = false                 # flip left-right first (with rotate180: upside down)

    [state.KEY]                    # one table per state key; exactly one of groups / joints
    groups = ["hand_pos"]          # env state groups, concatenated in this order
    joints = ["hand_pos.x", "y"]   # or single elements, GROUP.ELEMENT or a bare unique ELEMENT
    size = 3                       # the width the model expects (checked against the sources)

    [action.KEY]                   # one table per action key, same fields as state:
    groups = ["ee_delta"]          # env action groups its columns go to, in order

    [convert]                      # env action group -> conversion of the model's values
    gripper = "01_to_signed"       # into the env's convention (arena.conventions.CONVERSIONS)

This module only parses and checks the file's structure; whether the names exist in a
given env is checked by :mod:`arena_gr00t.translator` against the env spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from arena.remote import mapfile
from arena.remote.keymap import ImageEntry, parse_convert, parse_image
from arena.remote.mapfile import MappingError, MappingFile

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
PACKAGED_MAPPINGS: dict[str, str] = {
    "sawyer": "sawyer.toml",
    "point2d": "point2d.toml",
    "libero_panda": "libero_panda.toml",
}

_TOP_FIELDS = ("embodiment", "description", "language", "video", "state", "action", "convert")
_VIDEO_FIELDS = ("camera", "size", "rotate180", "mirror")
_VECTOR_FIELDS = ("groups", "joints", "size")


#: video key ``key`` is fed by env camera ``camera``, flipped as asked, resized with padding to ``size``
VideoEntry = ImageEntry


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
class Gr00tMapping(MappingFile):
    """A parsed mapping file; ``source`` names where it came from (used in every message)."""

    translator_prefix = "gr00t"
    protocol = "GR00T"

    source: str
    embodiment: str | None = None
    description: str = ""
    language_key: str | None = None
    video: Mapping[str, VideoEntry] = attrs.field(factory=dict)
    state: Mapping[str, VectorEntry] = attrs.field(factory=dict)
    action: Mapping[str, VectorEntry] = attrs.field(factory=dict)
    #: env action group -> conversion (arena.conventions.CONVERSIONS) applied to the model's values
    convert: Mapping[str, str] = attrs.field(factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str) -> Gr00tMapping:
        """Build from parsed TOML, raising MappingError naming the entry and the valid fields."""
        mapfile.check_fields(data, _TOP_FIELDS, source, "top level")
        embodiment = mapfile.opt_str(data.get("embodiment"), source, "embodiment")
        description = mapfile.opt_str(data.get("description"), source, "description") or ""
        language_key = None
        if "language" in data:
            lang = mapfile.table(data["language"], source, "language")
            mapfile.check_fields(lang, ("key",), source, "[language]")
            if "key" not in lang:
                raise MappingError(f'mapping {source}: [language] needs key = "..." (the instruction\'s language key)')
            language_key = mapfile.opt_str(lang.get("key"), source, "language.key")
        video = {k: parse_image(k, w, e, source) for k, w, e in mapfile.entries(data, "video", _VIDEO_FIELDS, source)}
        state = {
            k: _vector(k, w, e, source, "state") for k, w, e in mapfile.entries(data, "state", _VECTOR_FIELDS, source)
        }
        action = {
            k: _vector(k, w, e, source, "action") for k, w, e in mapfile.entries(data, "action", _VECTOR_FIELDS, source)
        }
        return cls(source, embodiment, description, language_key, video, state, action, parse_convert(data, source))


def _vector(key: str, where: str, entry: Mapping[str, Any], source: str, modality: str) -> VectorEntry:
    if ("groups" in entry) == ("joints" in entry):
        raise MappingError(
            f"mapping {source}: [{where}] needs exactly one of groups = [...] (env {modality} groups) "
            f"or joints = [...] (GROUP.ELEMENT names)"
        )
    groups = mapfile.names(entry["groups"], source, f"{where}.groups") if "groups" in entry else None
    joints = mapfile.names(entry["joints"], source, f"{where}.joints") if "joints" in entry else None
    return VectorEntry(key, groups, joints, mapfile.opt_positive_int(entry.get("size"), source, f"{where}.size"))


def packaged_mapping(embodiment: str) -> Any:
    """The packaged mapping file of ``embodiment`` (an importlib.resources Traversable)."""
    from importlib.resources import files

    return files("arena_gr00t").joinpath("mappings", PACKAGED_MAPPINGS[embodiment])


def load_mapping(obj: Any, name: str) -> Gr00tMapping:
    """A registered translator object -> Gr00tMapping (see :meth:`arena.remote.mapfile.MappingFile.load`)."""
    return Gr00tMapping.load(obj, name)
