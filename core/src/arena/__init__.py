"""arena: closed-loop evaluation of robot policies in simulation.

Import is light: heavy optional pieces (simulators, video, trackers) load
only when a plugin that needs them is used.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("arena")
"""Marker for hook implementations in plugins: ``@arena.hookimpl``."""

from arena.contract import ActionChunk, ActionGroup, EnvSpec, Observation, Task  # noqa: E402
from arena.env import EnvFamily, EpisodeSpec, StepResult, VectorEnv  # noqa: E402
from arena.errors import ArenaError, ConfigError, ContractError, EnvError, PolicyError, RegistryError  # noqa: E402
from arena.policy import Policy, PolicyDescription  # noqa: E402


def evaluate(*args, **kwargs):  # noqa: ANN002, ANN003
    """Run an evaluation and return its :class:`arena.results.Summary` (see arena.api.evaluate)."""
    from arena.api import evaluate as _evaluate

    return _evaluate(*args, **kwargs)


__all__ = [
    "__version__",
    "hookimpl",
    "evaluate",
    "ActionChunk",
    "ActionGroup",
    "EnvSpec",
    "Observation",
    "Task",
    "EnvFamily",
    "EpisodeSpec",
    "StepResult",
    "VectorEnv",
    "Policy",
    "PolicyDescription",
    "ArenaError",
    "ConfigError",
    "ContractError",
    "EnvError",
    "PolicyError",
    "RegistryError",
]
