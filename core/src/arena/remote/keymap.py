"""Key mappings: which env camera / state groups feed which native observation key, by name.

A remote family whose model reads named keys (openpi's ``observation/image``, OpenVLA's
``image``) ships one small TOML file per (model config, embodiment). The common schema,
shared by every such family (unknown fields are errors; a family adds its own top-level
fields through :attr:`KeyMapping.extra_fields` / :meth:`KeyMapping.parse_extra`)::

    name = "libero"                 # label shown by `arena check`
    description = "..."             # free text
    prompt_key = "prompt"           # key carrying the task instruction; absent: no prompt

    [images."observation/image"]    # one table per image key
    camera = "agentview"            # required: the env camera feeding it
    size = [224, 224]               # (H, W) after aspect-preserving resize + zero padding
    rotate180 = false               # rotate by 180 degrees before resizing
    mirror = false                  # flip left-right before resizing (with rotate180: upside down)

    [state."observation/state"]     # one table per state key
    groups = ["eef_pos", "eef_axis_angle", "gripper_qpos"]   # env state groups, concatenated in order
    # joints = ["qpos.j0", "qpos.j1"]  # or single elements (GROUP.ELEMENT, or a unique ELEMENT)
    size = 8                        # width the model expects (checked against the groups)

    [actions]
    key = "actions"                 # reply key holding the actions (families without one ignore it)
    groups = ["arm", "gripper"]     # env action groups the reply's columns feed, in order;
                                    # absent: all env action groups in env order

    [convert]                       # env action group -> conversion of the reply's values into the
    gripper = "flip_sign"           # env's convention (arena.conventions.CONVERSIONS); a served
                                    # policy's answers get the inverse

Whether the names exist in an env is checked by :mod:`arena.remote.translate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import attrs

from arena.conventions import CONVERSIONS
from arena.remote import mapfile
from arena.remote.mapfile import MappingError, MappingFile

__all__ = [
    "ImageEntry",
    "StateEntry",
    "KeyMapping",
    "parse_image",
    "parse_convert",
    "resolve_named_mapping",
    "mapping_for",
]

K = TypeVar("K", bound=MappingFile)

_TOP = ("name", "description", "prompt_key", "images", "state", "actions", "convert")
_IMAGE = ("camera", "size", "rotate180", "mirror")
_STATE = ("groups", "joints", "size")
_ACTIONS = ("key", "groups")


@attrs.frozen
class ImageEntry:
    """Image key ``key`` is env camera ``camera``, optionally rotated or mirrored, resized with padding to ``size``."""

    key: str
    camera: str
    size: tuple[int, int] | None = None
    rotate180: bool = False
    mirror: bool = False

    @property
    def flips(self) -> tuple[bool, bool]:
        """(rows, cols) to flip: a 180-degree turn flips both, a mirror the columns, both together the rows."""
        return self.rotate180, self.rotate180 != self.mirror

    def steps(self) -> list[str]:
        """The preprocessing applied, in words (for `arena check`)."""
        turn = {(True, True): "rotate 180", (False, True): "mirror left-right", (True, False): "flip upside down"}
        rows, cols = self.flips
        return [s for s in (turn.get((rows, cols), ""), "resize with pad" if self.size else "") if s]


@attrs.frozen
class StateEntry:
    """State key ``key`` concatenates env state ``groups`` or single elements ``joints``; ``size`` is checked."""

    key: str
    groups: tuple[str, ...] | None
    size: int | None = None
    joints: tuple[str, ...] | None = None


@attrs.frozen
class KeyMapping(MappingFile):
    """A parsed key mapping; ``source`` names where it came from (used in every message).

    Subclasses set ``translator_prefix``/``protocol``/``mapping_hint`` and may add attrs
    fields parsed from :attr:`extra_fields` by :meth:`parse_extra`.
    """

    extra_fields: ClassVar[tuple[str, ...]] = ()
    default_actions_key: ClassVar[str] = "actions"

    source: str
    name: str = ""
    description: str = ""
    prompt_key: str | None = None
    images: Mapping[str, ImageEntry] = attrs.field(factory=dict)
    #: env action group -> conversion (arena.conventions.CONVERSIONS) applied to the reply's values
    convert: Mapping[str, str] = attrs.field(factory=dict)
    state: Mapping[str, StateEntry] = attrs.field(factory=dict)
    actions_key: str = "actions"
    action_groups: tuple[str, ...] | None = None

    @classmethod
    def resource_source(cls, name: str, resource: Any) -> str:
        """Packaged mappings are named by file, not by their install path."""
        return f"{name} (packaged {Path(str(resource)).name})"

    @classmethod
    def parse_extra(cls, data: Mapping[str, Any], source: str) -> dict[str, Any]:
        """The family's own top-level fields (names in :attr:`extra_fields`) as constructor keywords."""
        return {}

    @classmethod
    def from_dict(cls: type[K], data: Mapping[str, Any], source: str) -> K:
        """Build from parsed TOML; MappingError names the entry and the valid fields."""
        mapfile.check_fields(data, (*_TOP, *cls.extra_fields), source, "top level")
        images = {
            key: parse_image(key, where, entry, source)
            for key, where, entry in mapfile.entries(data, "images", _IMAGE, source, quote=True)
        }
        state = {}
        for key, where, entry in mapfile.entries(data, "state", _STATE, source, quote=True):
            if ("groups" in entry) == ("joints" in entry):
                raise MappingError(
                    f"mapping {source}: [{where}] needs groups = [...] (env state groups, in order) or "
                    "joints = [...] (single elements), not both"
                )
            state[key] = StateEntry(
                key,
                mapfile.names(entry["groups"], source, f"{where}.groups") if "groups" in entry else None,
                mapfile.opt_positive_int(entry.get("size"), source, f"{where}: size"),
                mapfile.names(entry["joints"], source, f"{where}.joints") if "joints" in entry else None,
            )
        actions = mapfile.table(data.get("actions", {}), source, "actions")
        mapfile.check_fields(actions, _ACTIONS, source, "[actions]")
        action_groups = mapfile.names(actions["groups"], source, "actions.groups") if "groups" in actions else None
        prompt_key = mapfile.opt_str(data.get("prompt_key"), source, "top level: prompt_key")
        taken = [*images, *state, *([prompt_key] if prompt_key else [])]
        twice = sorted({k for k in taken if taken.count(k) > 1})
        if twice:
            raise MappingError(
                f"mapping {source}: key(s) {twice} are fed twice (images, state and prompt_key must differ)"
            )
        convert = parse_convert(data, source)
        return cls(
            source=source,
            convert=convert,
            name=mapfile.opt_str(data.get("name"), source, "top level: name") or "",
            description=mapfile.opt_str(data.get("description"), source, "top level: description") or "",
            prompt_key=prompt_key,
            images=images,
            state=state,
            actions_key=mapfile.opt_str(actions.get("key"), source, "[actions]: key") or cls.default_actions_key,
            action_groups=action_groups,
            **cls.parse_extra(data, source),
        )


def parse_image(key: str, where: str, entry: Mapping[str, Any], source: str) -> ImageEntry:
    """One image table (``camera``, ``size``, ``rotate180``, ``mirror``), for every mapping schema."""
    camera = mapfile.opt_str(entry.get("camera"), source, f"{where}: camera")
    if camera is None:
        raise MappingError(f'mapping {source}: [{where}] needs camera = "NAME" (the env camera feeding it)')
    flags = {}
    for flag in ("rotate180", "mirror"):
        flags[flag] = entry.get(flag, False)
        if not isinstance(flags[flag], bool):
            raise MappingError(f"mapping {source}: {where}.{flag} must be true or false, got {flags[flag]!r}")
    size = mapfile.opt_size2(entry.get("size"), source, f"{where}.size")
    return ImageEntry(key, camera, size, flags["rotate180"], flags["mirror"])


def parse_convert(data: Mapping[str, Any], source: str) -> dict[str, str]:
    """The ``[convert]`` table: env action group -> a conversion of :data:`arena.conventions.CONVERSIONS`."""
    convert = {}
    for group, conv in mapfile.table(data.get("convert", {}), source, "convert").items():
        if not isinstance(conv, str) or conv not in CONVERSIONS:
            raise MappingError(
                f"mapping {source}: [convert] {group} = {conv!r} is not a conversion (known: {', '.join(CONVERSIONS)})"
            )
        convert[str(group)] = conv
    return convert


def resolve_named_mapping(cls: type[K], value: str, packaged: Mapping[str, Any]) -> K:
    """``--mapping NAME|PATH`` for any mapping class: a packaged mapping (``packaged[NAME]``) or a TOML file."""
    if value in packaged and not Path(value).exists():
        return cls.load(packaged[value], f"--mapping {value}")
    if not Path(value).exists():
        raise MappingError(f"--mapping: {value!r} is neither a packaged mapping ({', '.join(packaged)}) nor a file")
    return cls.from_file(value)


def mapping_for(cls: type[K], value: str | None, packaged: Mapping[str, Any], spec: Any) -> K:
    """``--mapping`` if given, else the mapping registered for ``spec``'s embodiment (client and server alike)."""
    return resolve_named_mapping(cls, value, packaged) if value else cls.registered(spec)
