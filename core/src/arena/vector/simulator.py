"""What a CPU simulator family implements to run in arena's slot runners: one :class:`Simulator`.

A simulator is one env slot's scene, built by a picklable factory in the
process that steps it (this one, or a spawned worker). It writes its state
and camera frames straight into the row buffers it is handed, which for
worker processes live in shared memory: nothing is pickled per step but
the actions going out and a few numbers coming back.

:func:`execute` is the one implementation of the slot commands (reset,
chunk, observe), shared by the in-process and the worker runners, so both
give identical outcomes.
"""

from __future__ import annotations

import abc
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from arena.env import EpisodeSpec

__all__ = ["Simulator", "SimulatorFactory", "Reply", "execute", "close_quietly"]

log = logging.getLogger(__name__)


class Simulator(abc.ABC):
    """One slot's simulator. ``state`` is the slot's float32 row; ``images`` camera -> (H, W, 3) uint8."""

    @abc.abstractmethod
    def reset(self, episode: EpisodeSpec, state: np.ndarray) -> None:
        """Start ``episode`` (its task, from the initial state its seed or index decides); write the state.

        Build a new scene only when the task differs from the current one: the
        loop hands a slot episodes of the task it already holds when it can.
        """

    @abc.abstractmethod
    def step(self, action: np.ndarray, state: np.ndarray) -> bool:
        """Apply one action, write the new state; True when the task is solved."""

    @abc.abstractmethod
    def render(self, images: Mapping[str, np.ndarray]) -> int:
        """Render every camera into ``images``; returns the number of images rendered."""

    def close(self) -> None:
        """Free the scene and its GL context."""


def close_quietly(thing: Any, what: str) -> None:
    """Close ``thing`` (a scene, a renderer) if it is there; a failure is logged, never raised.

    Closing a broken scene must not mask the error that broke it.
    """
    if thing is None:
        return
    try:
        thing.close()
    except Exception:  # noqa: BLE001 - see above
        log.debug("closing %s failed", what, exc_info=True)


#: a picklable callable building the simulator inside the process that steps it
SimulatorFactory = Callable[[], Simulator]

#: (ok, steps executed, success, error message or None, images rendered)
Reply = tuple[bool, int, bool, "str | None", int]


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _finite(state: np.ndarray) -> bool:
    return math.isfinite(float(state.sum()))


def execute(
    sim: Simulator,
    command: tuple[Any, ...],
    state: np.ndarray,
    images: Mapping[str, np.ndarray],
    shared_actions: np.ndarray | None = None,
) -> Reply:
    """Run one slot command; env failures become error replies, never exceptions.

    Commands: ``("reset", episode, render)``, ``("chunk", actions (m, A),
    count, render)`` (stops at the first success or error; renders after the
    last action only if the slot did not end), ``("observe",)`` (render now).
    A chunk's ``actions`` may be None: they are in the slot's shared action
    rows (``shared_actions``), written by the parent before sending.
    """
    kind = command[0]
    steps = 0
    try:
        if kind == "chunk":
            _, actions, count, render = command
            if actions is None:
                actions = shared_actions
            for j in range(count):
                steps = j + 1
                solved = sim.step(actions[j], state)
                if not _finite(state):
                    return (False, steps, False, "simulation diverged: non-finite observation", 0)
                if solved:
                    return (True, steps, True, None, 0)
            return (True, steps, False, None, sim.render(images) if render else 0)
        if kind == "reset":
            _, episode, render = command
            sim.reset(episode, state)
            if not _finite(state):
                return (False, 0, False, "simulation diverged: non-finite initial observation", 0)
            return (True, 0, False, None, sim.render(images) if render else 0)
        if kind == "observe":
            return (True, 0, False, None, sim.render(images))
        raise ValueError(f"unknown slot command {kind!r}")
    except Exception as exc:  # noqa: BLE001 - every env failure is reported to the loop
        return (False, steps, False, _error(exc), 0)
