"""arena plugin entry point (``[project.entry-points.arena] metaworld``).

Kept import-light: registering the family and policy imports neither MuJoCo
nor Meta-World; they load when an env is built or a policy instantiated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import arena
from arena_metaworld.expert import ExpertPolicy
from arena_metaworld.family import MetaWorldEnvFamily

if TYPE_CHECKING:  # pragma: no cover
    from arena.registry import Registry


@arena.hookimpl
def arena_register_envs(registry: Registry) -> None:
    registry.register(
        "metaworld",
        MetaWorldEnvFamily(),
        help="Meta-World v3 (MuJoCo, Sawyer): 50 manipulation tasks and the MT10/MT50 suites",
    )


@arena.hookimpl
def arena_register_policies(registry: Registry) -> None:
    registry.register(
        "expert",
        ExpertPolicy,
        help="Meta-World's scripted expert policies (state-based, for metaworld/* envs)",
    )
