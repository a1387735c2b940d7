"""arena plugin entry point (``[project.entry-points.arena] vlaeval``): the family and its mappings."""

from __future__ import annotations

import arena
from arena_vlaeval.mapping import EMBODIMENT_MAPPINGS, packaged_mapping
from arena_vlaeval.policy import VlaevalPolicy


@arena.hookimpl
def arena_register_policies(registry) -> None:  # noqa: ANN001 - arena.registry.Registry
    registry.register(
        "vlaeval", VlaevalPolicy, help="models served by vla-eval (WebSocket + msgpack), one session per env slot"
    )


@arena.hookimpl
def arena_register_translators(registry) -> None:  # noqa: ANN001 - arena.registry.Registry
    for embodiment, name in EMBODIMENT_MAPPINGS.items():
        registry.register(f"vlaeval:{embodiment}", packaged_mapping(name), help=f"vla-eval keys <-> {name}")
