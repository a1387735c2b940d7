"""arena plugin entry point (``[project.entry-points.arena] gr00t``).

Registers the ``gr00t`` policy family and the packaged mappings as translators
``gr00t:<embodiment>``; a third party teaches the family a new robot by registering
``gr00t:<their embodiment>`` (a TOML path, a Gr00tMapping, or a callable returning one).
"""

from __future__ import annotations

import arena
from arena_gr00t.mapping import PACKAGED_MAPPINGS, packaged_mapping
from arena_gr00t.policy import Gr00tPolicy


@arena.hookimpl
def arena_register_policies(registry) -> None:  # noqa: ANN001 - arena.registry.Registry
    registry.register(
        "gr00t",
        Gr00tPolicy,
        help="remote NVIDIA Isaac-GR00T policy server (ZeroMQ + msgpack), keys mapped per embodiment",
    )


@arena.hookimpl
def arena_register_translators(registry) -> None:  # noqa: ANN001 - arena.registry.Registry
    helps = {
        "sawyer": "GR00T keys <-> Meta-World Sawyer (metaworld/*)",
        "point2d": "GR00T keys <-> the debug point2d envs (debug/*)",
        "libero_panda": "GR00T LIBERO checkpoints <-> LIBERO (libero/*)",
    }
    for embodiment in PACKAGED_MAPPINGS:
        registry.register(f"gr00t:{embodiment}", packaged_mapping(embodiment), help=helps.get(embodiment, ""))
