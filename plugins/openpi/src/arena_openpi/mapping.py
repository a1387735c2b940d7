"""Mapping files: which env camera / state group feeds which openpi observation key.

openpi has no schema exchange: the served model config decides the observation keys
(``observation/image``, ``observation/state``, ``prompt`` for LIBERO; ``observation/
exterior_image_1_left``, ``observation/joint_position``, ... for DROID). One small TOML
file per served config names, for each key, the env camera or state groups that feed it,
so nothing is matched by position and nothing is silently zero-filled.

Schema: the kit's key mapping (:mod:`arena.remote.keymap`) plus two fields of openpi's own
(unknown fields are errors; every field is optional unless marked)::

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
    mirror = false                  # flip left-right before resizing

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
from typing import Any

import attrs

from arena.remote import mapfile
from arena.remote.keymap import ImageEntry, KeyMapping, StateEntry, resolve_named_mapping
from arena.remote.mapfile import MappingError

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
EMBODIMENT_MAPPINGS: dict[str, str] = {"sawyer": "metaworld", "point2d": "point2d", "libero_panda": "libero"}


@attrs.frozen
class OpenpiMapping(KeyMapping):
    """A parsed openpi mapping: the kit's key mapping plus ``replan_steps`` and ``action_horizon``."""

    translator_prefix = "openpi"
    protocol = "openpi"
    mapping_hint = "--mapping PATH (or libero/droid)"
    extra_fields = ("replan_steps", "action_horizon")

    replan_steps: int | None = None
    action_horizon: int | None = None

    @classmethod
    def parse_extra(cls, data: Mapping[str, Any], source: str) -> dict[str, Any]:
        return {
            "replan_steps": mapfile.opt_positive_int(data.get("replan_steps"), source, "top level: replan_steps"),
            "action_horizon": mapfile.opt_positive_int(data.get("action_horizon"), source, "top level: action_horizon"),
        }


def packaged_mapping(name: str) -> Any:
    """The packaged mapping file ``name`` (an importlib.resources Traversable)."""
    return files("arena_openpi").joinpath("mappings", PACKAGED_MAPPINGS[name])


def load_mapping(obj: Any, name: str) -> OpenpiMapping:
    """A registered translator object -> OpenpiMapping (see :meth:`arena.remote.mapfile.MappingFile.load`)."""
    return OpenpiMapping.load(obj, name)


def resolve_mapping(value: str) -> OpenpiMapping:
    """``--mapping`` value: a packaged name (``libero``, ``droid``, ``metaworld``, ``point2d``) or a TOML path."""
    return resolve_named_mapping(OpenpiMapping, value, {n: packaged_mapping(n) for n in PACKAGED_MAPPINGS})
