"""Every hook arena calls, in one module (the hook reference is docs/hooks.md).

Register hooks receive a registry and call ``registry.register(name, obj, ...)``;
lifecycle hooks let observers (loggers, trackers, reporters) follow a run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from arena.registry import Registry
    from arena.results import EpisodeRecord, Summary
    from arena.runinfo import RunInfo

hookspec = pluggy.HookspecMarker("arena")


@hookspec
def arena_register_policies(registry: Registry) -> None:
    """Register policy families: ``registry.register("name", PolicySubclass, help=...)``.

    The class's ``Config`` (an attrs class) supplies the family's CLI flags.
    """


@hookspec
def arena_register_envs(registry: Registry) -> None:
    """Register env families: ``registry.register("name", EnvFamily instance, help=...)``."""


@hookspec
def arena_register_translators(registry: Registry) -> None:
    """Register translators keyed by ``"policy_family:embodiment"``.

    Lets a third party teach an existing policy family a new robot without forking it.
    """


@hookspec
def arena_register_schedulers(registry: Registry) -> None:
    """Register action schedulers: ``registry.register("name", SchedulerSubclass, help=...)``."""


@hookspec
def arena_run_start(run: RunInfo) -> None:
    """An evaluation starts (run directory created, config known)."""


@hookspec
def arena_episode_end(run: RunInfo, record: EpisodeRecord) -> None:
    """An episode ended and was appended to episodes.jsonl."""


@hookspec
def arena_run_end(run: RunInfo, summary: Summary) -> None:
    """An evaluation ended; ``summary`` was written to summary.json."""
