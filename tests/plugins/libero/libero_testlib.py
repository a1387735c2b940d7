"""Shared bits of the LIBERO tests."""

from __future__ import annotations

from arena_libero.tasks import task_names

SUITE = "libero_object"
#: two libero_object tasks: a can (tall) and a flat box (the expert grasps them differently)
TASKS = task_names(SUITE)[0], task_names(SUITE)[6]


def outcomes(records) -> list:  # noqa: ANN001
    return sorted((r.task, r.episode_index, r.seed, r.success, r.length) for r in records)
