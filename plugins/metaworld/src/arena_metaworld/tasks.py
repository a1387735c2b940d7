"""Task names, suites and language instructions of the Meta-World v3 family.

Task names and suites come from metaworld's own lists (``metaworld.env_dict``),
so the family tracks the installed Meta-World. Instructions live in one data
file, ``instructions.json``, because Meta-World ships none (see its
``_source`` entry and docs/metaworld.md).
"""

from __future__ import annotations

import functools
import json
from importlib import resources

from arena.errors import RegistryError

__all__ = ["task_names", "suites", "env_ids", "tasks_of", "instructions", "env_class"]


@functools.cache
def task_names() -> tuple[str, ...]:
    """The 50 v3 task names (``pick-place-v3`` ...) in Meta-World's MT50 order."""
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    return tuple(ALL_V3_ENVIRONMENTS)


@functools.cache
def suites() -> dict[str, tuple[str, ...]]:
    """Suite id -> its tasks: ``mt10`` and ``mt50`` as Meta-World defines them."""
    from metaworld.env_dict import MT10_V3, MT50_V3

    return {"mt10": tuple(MT10_V3), "mt50": tuple(MT50_V3)}


def env_ids() -> list[str]:
    """Every id of the family (without the ``metaworld/`` prefix): suites first, then tasks."""
    return sorted(suites()) + sorted(task_names())


def tasks_of(env_id: str) -> tuple[str, ...]:
    """The tasks an env id runs; raises RegistryError listing the valid ids."""
    if env_id in suites():
        return suites()[env_id]
    if env_id in task_names():
        return (env_id,)
    raise RegistryError(
        f"unknown Meta-World env id {env_id!r}; valid ids: " + ", ".join(f"metaworld/{i}" for i in env_ids())
    )


@functools.cache
def instructions() -> dict[str, str]:
    """Task name -> instruction, from the package's ``instructions.json``.

    Instructions must be unique: the expert policy identifies a slot's task by
    its instruction.
    """
    text = resources.files("arena_metaworld").joinpath("instructions.json").read_text(encoding="utf-8")
    data = {k: v for k, v in json.loads(text).items() if not k.startswith("_")}
    missing = sorted(set(task_names()) - set(data))
    if missing:
        raise RegistryError(f"instructions.json lacks instructions for: {', '.join(missing)}")
    if len(set(data.values())) != len(data):
        raise RegistryError("instructions.json: instructions must be unique per task")
    return data


def env_class(task: str) -> type:
    """The metaworld env class of ``task``."""
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    return ALL_V3_ENVIRONMENTS[task]
