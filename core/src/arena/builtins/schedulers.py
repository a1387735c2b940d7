"""Registers the built-in action schedulers."""

from __future__ import annotations

import arena
from arena.schedulers import ChunkedScheduler, PassThroughScheduler, SyncedBatchScheduler, TemporalEnsembleScheduler


@arena.hookimpl
def arena_register_schedulers(registry) -> None:
    registry.register(
        "chunked", ChunkedScheduler, help="execute execution_horizon actions of each chunk, then query (default)"
    )
    registry.register("passthrough", PassThroughScheduler, help="query every step, execute the first action")
    registry.register(
        "ensemble",
        TemporalEnsembleScheduler,
        help="ACT temporal ensembling: query every step, average overlapping chunks",
    )
    registry.register("synced", SyncedBatchScheduler, help="query only when every env needs a chunk; waiting envs hold")
