"""OpenVLA mappings: the kit's key mapping (:mod:`arena.remote.keymap`) plus ``unnorm_key``.

OpenVLA reads ``image`` (one camera) and ``instruction``; ``unnorm_key`` names the dataset
statistics that un-normalise its action. A mapping may add state keys (``proprio``): the
stock server ignores them, arena's reference server reads them (a state-based policy served
behind the protocol needs them). The reply's columns feed ``[actions] groups`` in order.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources import files
from typing import Any

import attrs

from arena.remote import mapfile
from arena.remote.keymap import KeyMapping

__all__ = ["OpenvlaMapping", "PACKAGED_MAPPINGS", "EMBODIMENT_MAPPINGS", "packaged_mapping"]

#: packaged mapping name -> file under arena_openvla/mappings (``--mapping NAME``)
PACKAGED_MAPPINGS = {"metaworld": "metaworld.toml", "libero": "libero.toml"}
#: embodiment -> packaged mapping, registered as translator ``openvla:EMBODIMENT``
EMBODIMENT_MAPPINGS = {"sawyer": "metaworld", "libero_panda": "libero"}


@attrs.frozen
class OpenvlaMapping(KeyMapping):
    translator_prefix = "openvla"
    protocol = "OpenVLA"
    mapping_hint = "--mapping PATH (or libero)"
    extra_fields = ("unnorm_key",)
    default_actions_key = ""

    unnorm_key: str | None = None

    @classmethod
    def parse_extra(cls, data: Mapping[str, Any], source: str) -> dict[str, Any]:
        return {"unnorm_key": mapfile.opt_str(data.get("unnorm_key"), source, "top level: unnorm_key")}


def packaged_mapping(name: str) -> Any:
    return files("arena_openvla").joinpath("mappings", PACKAGED_MAPPINGS[name])
