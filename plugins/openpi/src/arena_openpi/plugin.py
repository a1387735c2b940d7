"""arena plugin entry point (``[project.entry-points.arena] openpi``).

Registers the ``openpi`` policy family and the packaged embodiment mappings as translators
``openpi:<embodiment>`` (``openpi:sawyer`` for Meta-World, ``openpi:point2d`` for the debug
envs). A third party teaches the family a new robot by registering ``openpi:<embodiment>``
(a TOML path, an OpenpiMapping, a dict, or a callable returning one).
"""

from __future__ import annotations

import arena
from arena_openpi.mapping import EMBODIMENT_MAPPINGS, packaged_mapping
from arena_openpi.policy import OpenpiPolicy

_HELP = {
    "sawyer": "openpi keys <-> Meta-World Sawyer (metaworld/*)",
    "point2d": "openpi keys <-> the debug point2d envs (debug/*)",
    "libero_panda": "openpi LIBERO configs (pi0_libero, pi05_libero) <-> LIBERO (libero/*)",
}


@arena.hookimpl
def arena_register_policies(registry) -> None:  # noqa: ANN001 - arena.registry.Registry
    registry.register(
        "openpi",
        OpenpiPolicy,
        help="remote openpi policy servers (pi0, pi0.5; WebSocket + msgpack-numpy), requests fanned out over replicas",
    )


@arena.hookimpl
def arena_register_translators(registry) -> None:  # noqa: ANN001 - arena.registry.Registry
    for embodiment, name in EMBODIMENT_MAPPINGS.items():
        registry.register(f"openpi:{embodiment}", packaged_mapping(name), help=_HELP.get(embodiment, ""))
