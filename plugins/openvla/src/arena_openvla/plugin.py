"""arena plugin entry point (``[project.entry-points.arena] openvla``): the family and its mappings."""

from __future__ import annotations

import arena
from arena_openvla.mapping import EMBODIMENT_MAPPINGS, packaged_mapping
from arena_openvla.policy import OpenvlaPolicy


@arena.hookimpl
def arena_register_policies(registry) -> None:  # noqa: ANN001 - arena.registry.Registry
    registry.register(
        "openvla", OpenvlaPolicy, help="OpenVLA REST servers (POST /act, json-numpy), requests fanned out over replicas"
    )


@arena.hookimpl
def arena_register_translators(registry) -> None:  # noqa: ANN001 - arena.registry.Registry
    for embodiment, name in EMBODIMENT_MAPPINGS.items():
        registry.register(f"openvla:{embodiment}", packaged_mapping(name), help=f"OpenVLA keys <-> {name}")
