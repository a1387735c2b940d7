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

from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

import attrs

from arena import mapfile
from arena.mapfile import MappingError, MappingFile

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
class OpenpiMapping(MappingFile):
    """A parsed mapping; ``source`` names where it came from (used in every message)."""

    translator_prefix = "openpi"
    protocol = "openpi"
    mapping_hint = "--mapping PATH (or libero/droid)"

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
    def resource_source(cls, name: str, resource: Any) -> str:
        """Packaged mappings are named by file, not by their install path."""
        return f"{name} (packaged {Path(str(resource)).name})"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str) -> OpenpiMapping:
        """Build from parsed TOML; MappingError names the entry and the valid fields."""
        mapfile.check_fields(data, _TOP, source, "top level")
        images = {}
        for key, where, entry in mapfile.entries(data, "images", _IMAGE, source, quote=True):
            camera = mapfile.opt_str(entry.get("camera"), source, f"{where}: camera")
            if camera is None:
                raise MappingError(f'mapping {source}: [{where}] needs camera = "NAME" (the env camera feeding it)')
            rotate = entry.get("rotate180", False)
            if not isinstance(rotate, bool):
                raise MappingError(f"mapping {source}: {where}.rotate180 must be true or false, got {rotate!r}")
            images[key] = ImageEntry(key, camera, mapfile.opt_size2(entry.get("size"), source, f"{where}.size"), rotate)
        state = {}
        for key, where, entry in mapfile.entries(data, "state", _STATE, source, quote=True):
            if "groups" not in entry:
                raise MappingError(f"mapping {source}: [{where}] needs groups = [...] (env state groups, in order)")
            state[key] = StateEntry(
                key,
                mapfile.names(entry["groups"], source, f"{where}.groups"),
                mapfile.opt_positive_int(entry.get("size"), source, f"{where}: size"),
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
        return cls(
            source=source,
            name=mapfile.opt_str(data.get("name"), source, "top level: name") or "",
            description=mapfile.opt_str(data.get("description"), source, "top level: description") or "",
            replan_steps=mapfile.opt_positive_int(data.get("replan_steps"), source, "top level: replan_steps"),
            action_horizon=mapfile.opt_positive_int(data.get("action_horizon"), source, "top level: action_horizon"),
            prompt_key=prompt_key,
            images=images,
            state=state,
            actions_key=mapfile.opt_str(actions.get("key"), source, "[actions]: key") or "actions",
            action_groups=action_groups,
        )


def packaged_mapping(name: str) -> Any:
    """The packaged mapping file ``name`` (an importlib.resources Traversable)."""
    return files("arena_openpi").joinpath("mappings", PACKAGED_MAPPINGS[name])


def load_mapping(obj: Any, name: str) -> OpenpiMapping:
    """A registered translator object -> OpenpiMapping (see :meth:`arena.mapfile.MappingFile.load`)."""
    return OpenpiMapping.load(obj, name)


def resolve_mapping(value: str) -> OpenpiMapping:
    """``--mapping`` value: a packaged name (``libero``, ``droid``, ``metaworld``, ``point2d``) or a TOML path."""
    if value in PACKAGED_MAPPINGS and not Path(value).exists():
        return load_mapping(packaged_mapping(value), f"--mapping {value}")
    if not Path(value).exists():
        raise MappingError(
            f"--mapping: {value!r} is neither a packaged mapping ({', '.join(PACKAGED_MAPPINGS)}) nor a file"
        )
    return OpenpiMapping.from_file(value)
