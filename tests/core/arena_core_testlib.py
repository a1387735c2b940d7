"""Shared test components for the arena-core tests (imported by conftest.py and the test modules).

Everything here is a real arena component (Policy subclasses, plugin modules
on disk with real entry points), kept small and deterministic.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from arena.arrays import to_numpy
from arena.contract import ActionChunk, Observation
from arena.policy import Policy, PolicyDescription
from arena.results import EpisodeRecord

# The debug env's documented dynamics (arena.builtins.debug_env).
STEP_SIZE = 0.1

#: ARENA_PLUGINS value that matches no installed plugin: only built-ins load.
ONLY_BUILTINS = "arena-core-tests-only-builtins"


# -- policies --------------------------------------------------------------------------------------


@attrs.define
class GoalConfig:
    action_horizon: int = 1
    execution_horizon: int | None = None


def plan_to_goal(position: np.ndarray, goal: np.ndarray, horizon: int) -> np.ndarray:
    """(horizon, 2) actions driving ``position`` straight to ``goal`` at full speed (open loop)."""
    p = np.asarray(position, np.float32).copy()
    g = np.asarray(goal, np.float32)
    out = np.zeros((horizon, 2), np.float32)
    for j in range(horizon):
        a = np.clip((g - p) / np.float32(STEP_SIZE), -1.0, 1.0).astype(np.float32)
        out[j] = a
        p = np.clip(p + STEP_SIZE * a, 0.0, 1.0)
    return out


class GoalSeekingPolicy(Policy):
    """Deterministic policy for ``debug/*``: reads the named state groups ``position`` and ``goal``.

    Records every mask it is queried with (``masks``) and every reset.
    """

    Config = GoalConfig

    def __init__(self, config: GoalConfig | None, env_spec: Any, num_envs: int) -> None:
        super().__init__(config or GoalConfig(), env_spec, num_envs)
        self.masks: list[np.ndarray] = []
        self.resets: list[list[int]] = []
        self.closed = False

    def reset(self, env_ids: Sequence[int], seeds: Sequence[int] | None = None) -> None:
        self.resets.append([int(i) for i in env_ids])

    def chunk_for(self, observation: Observation, ids: np.ndarray) -> np.ndarray:
        pos = to_numpy(observation.state["position"])
        goal = to_numpy(observation.state["goal"])
        return np.stack([plan_to_goal(pos[i], goal[i], self.config.action_horizon) for i in ids])

    def infer(self, observation: Observation, env_mask: np.ndarray) -> ActionChunk:
        self.masks.append(np.array(env_mask, bool))
        ids = np.flatnonzero(env_mask)
        return ActionChunk(self.chunk_for(observation, ids), observation.env_ids[ids])

    def describe(self) -> PolicyDescription:
        return PolicyDescription(
            family="goal-seeking",
            action_horizon=self.config.action_horizon,
            execution_horizon=self.config.execution_horizon,
            state={"position": 2, "goal": 2},
            action_dim=self.env_spec.action_dim,
        )

    def close(self) -> None:
        self.closed = True


class Greedy(Policy):
    """Deterministic, camera-free: full speed toward the goal (reaches it in a few steps)."""

    def infer(self, observation: Observation, env_mask: np.ndarray) -> ActionChunk:
        ids = np.flatnonzero(env_mask)
        delta = np.asarray(observation.state["goal"])[ids] - np.asarray(observation.state["position"])[ids]
        return ActionChunk(np.clip(delta / 0.1, -1, 1).astype(np.float32)[:, None, :], observation.env_ids[ids])

    def describe(self) -> PolicyDescription:
        return PolicyDescription(family="greedy", action_horizon=1, action_dim=2)


def red_block_matches(image: np.ndarray, position: np.ndarray) -> bool:
    """True when the pure-red pixels of a debug ``top`` image are exactly the 3x3 point marker at ``position``."""
    size = image.shape[0]
    r = int(np.clip(round(float(position[1]) * (size - 1)), 0, size - 1))
    c = int(np.clip(round(float(position[0]) * (size - 1)), 0, size - 1))
    expected = np.zeros(image.shape[:2], bool)
    expected[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2] = True
    red = np.all(image == np.array([255, 0, 0], np.uint8), axis=-1)
    return bool(np.array_equal(red, expected))


class CameraGoalPolicy(GoalSeekingPolicy):
    """Declares the ``top`` camera and checks, on every query, that each masked row's image shows its state."""

    def __init__(self, config: GoalConfig | None, env_spec: Any, num_envs: int) -> None:
        super().__init__(config, env_spec, num_envs)
        self.checked = 0
        self.stale: list[tuple[int, list[float]]] = []

    def infer(self, observation: Observation, env_mask: np.ndarray) -> ActionChunk:
        images = to_numpy(observation.images["top"])
        pos = to_numpy(observation.state["position"])
        for i in np.flatnonzero(env_mask):
            self.checked += 1
            if not red_block_matches(images[i], pos[i]):
                self.stale.append((int(i), pos[i].tolist()))
        return super().infer(observation, env_mask)

    def describe(self) -> PolicyDescription:
        desc = super().describe()
        desc.family = "camera-goal"
        desc.cameras = {"top": None}
        return desc


# -- records ---------------------------------------------------------------------------------------


def outcome(record: EpisodeRecord | dict) -> tuple:
    """A record without what legitimately varies between runs (timings, env slot)."""
    d = record.to_dict() if isinstance(record, EpisodeRecord) else dict(record)
    return (d["task"], d["episode_index"], d["seed"], d["success"], d["length"], d["failure_reason"], d["error"])


def outcomes(records: Sequence[EpisodeRecord | dict]) -> list[tuple]:
    return sorted(outcome(r) for r in records)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def read_records(run: Path) -> list[EpisodeRecord]:
    """The episodes of run directory ``run``, in file order."""
    return [EpisodeRecord.from_dict(d) for d in read_jsonl(Path(run) / "episodes.jsonl")]


def ceil_div(a: int, b: int) -> int:
    return int(math.ceil(a / b))


def eval_argv(policy: str, env: str, output: Path | str, *flags: str) -> list[str]:
    """``eval --policy P --env E FLAGS --output OUT --no-progress``: the usual ``arena eval`` of the CLI tests."""
    return ["eval", "--policy", policy, "--env", env, *flags, "--output", str(output), "--no-progress"]


# -- fake installed distributions (real entry points) -------------------------------------------------

_counter = itertools.count()


class FakeDists:
    """Writes ``NAME-VERSION.dist-info`` folders with ``arena`` entry points, plus their modules, into ``root``.

    ``root`` must be on sys.path; :func:`arena.plugins.reset_entry_point_cache`
    must be called after adding dists (the fixture does both).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules: list[str] = []

    def add(self, dist: str, source: str, *, plugin: str | None = None, version: str = "1.0") -> str:
        """Install distribution ``dist`` whose entry point ``plugin`` (default: ``dist``) is a module with ``source``.

        Returns the module name (unique per call, so sys.modules never hands back another test's module).
        """
        module = f"arena_fake_{dist.replace('-', '_')}_{next(_counter)}"
        info = self.root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[arena]\n{plugin or dist} = {module}\n")
        (self.root / f"{module}.py").write_text(textwrap.dedent(source))
        self.modules.append(module)
        from arena.plugins import reset_entry_point_cache

        reset_entry_point_cache()
        return module

    def cleanup(self) -> None:
        for m in self.modules:
            sys.modules.pop(m, None)


def policy_plugin_source(policy_name: str, extra: str = "") -> str:
    """Module source of a plugin registering the zero-like policy ``policy_name``."""
    return f"""
import numpy as np
import arena
from arena.contract import ActionChunk
from arena.policy import Policy, PolicyDescription

class P(Policy):
    \"\"\"{policy_name}: holds still\"\"\"
    def infer(self, observation, env_mask):
        ids = np.flatnonzero(env_mask)
        return ActionChunk(np.zeros((len(ids), 1, self.env_spec.action_dim), np.float32), observation.env_ids[ids])

@arena.hookimpl
def arena_register_policies(registry):
    registry.register({policy_name!r}, P)
{extra}
"""


class Factory:
    """A policy factory ``(env_spec, num_envs) -> Policy`` for ``arena.evaluate`` that keeps what it made."""

    def __init__(self, cls: type = GoalSeekingPolicy, **config: Any) -> None:
        self.cls = cls
        self.config = GoalConfig(**config)
        self.made: list[Policy] = []

    def __call__(self, env_spec: Any, num_envs: int) -> Policy:
        policy = self.cls(self.config, env_spec, num_envs)
        self.made.append(policy)
        return policy

    @property
    def policy(self) -> Any:
        assert len(self.made) == 1
        return self.made[0]


def evaluate_records(policy: Any, env: str = "debug/reach", **kwargs: Any) -> tuple[Any, list[EpisodeRecord]]:
    """``arena.evaluate(..., write=False)`` returning (summary, records in the order episodes ended)."""
    import arena

    records: list[EpisodeRecord] = []
    kwargs.setdefault("write", False)
    summary = arena.evaluate(policy, env, on_episode=lambda r, done, total: records.append(r), **kwargs)
    return summary, records


#: a plugin module whose first hook name is misspelled (pluggy's check_pending rejects it)
MISSPELLED = """
import arena

@arena.hookimpl
def arena_register_policys(registry):
    registry.register("typo", object)

@arena.hookimpl
def arena_register_envs(registry):
    registry.register("typo-env", object)
"""
