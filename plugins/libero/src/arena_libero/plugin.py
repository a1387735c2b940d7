"""arena plugin entry point (``[project.entry-points.arena] libero``).

Kept import-light: registering the family and the expert imports neither
robosuite nor MuJoCo; they load when an env is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import arena
from arena_libero.expert import LiberoExpert
from arena_libero.family import LiberoEnvFamily

if TYPE_CHECKING:  # pragma: no cover
    from arena.registry import Registry


@arena.hookimpl
def arena_register_envs(registry: Registry) -> None:
    registry.register(
        "libero",
        LiberoEnvFamily(),
        help="LIBERO (robosuite/MuJoCo, Panda): the spatial, object, goal, 10 and 90 suites, published protocol",
    )


@arena.hookimpl
def arena_register_policies(registry: Registry) -> None:
    registry.register(
        "libero-expert",
        LiberoExpert,
        help="scripted pick-and-place expert for libero/* (reads privileged poses: needs --privileged true)",
    )
