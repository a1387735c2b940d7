"""The ``expert`` policy family: Meta-World's scripted policies behind arena's Policy interface.

The expert reads only the canonical Observation: it reassembles Meta-World's
39-d vector from the named state groups (never touching env internals) and
finds each slot's task from its instruction. Instructions are unique per task
(checked when they are loaded), and the policy knows ``env_spec.tasks`` with
their instructions, so instruction -> task is exact; the Observation carries
no other per-slot task signal, and adding a task-id state group would leak an
oracle into what learned policies see.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np

from arena.arrays import to_numpy
from arena.contract import ActionChunk, EnvSpec, Observation
from arena.errors import PolicyError
from arena.policy import NoConfig, Policy, PolicyDescription
from arena_metaworld.layout import GROUP_SLICES, OBS_DIM, STATE_GROUPS

__all__ = ["ExpertPolicy", "expert_class"]

ACTION_DIM = 4


def expert_class(task: str) -> type | None:
    """Meta-World's scripted policy class for ``task`` (None if there is none).

    ``metaworld.policies.ENV_POLICY_MAP`` is Meta-World's own task -> class
    map (it also covers names that differ, e.g. ``peg-insert-side-v3`` ->
    ``SawyerPegInsertionSideV3Policy``); tasks it lacks are looked up by the
    naming convention ``Sawyer<CamelTask>V3Policy``.
    """
    import metaworld.policies as mp

    cls = mp.ENV_POLICY_MAP.get(task)
    if cls is None:
        m = re.fullmatch(r"(.+)-(v\d+)", task)
        if m:
            camel = "".join(part.capitalize() for part in m.group(1).split("-"))
            cls = getattr(mp, f"Sawyer{camel}{m.group(2).upper()}Policy", None)
    return cls


class ExpertPolicy(Policy):
    """Meta-World's scripted expert for each slot's task; horizon-1 chunks clipped to the action bounds."""

    Config = NoConfig

    def __init__(self, config: Any, env_spec: EnvSpec, num_envs: int) -> None:
        super().__init__(config, env_spec, num_envs)
        self._groups = list(STATE_GROUPS)
        self._problems: list[str] = []
        for name, elements in STATE_GROUPS.items():
            if name not in env_spec.state_groups:
                self._problems.append(f"env {env_spec.name} has no state group {name!r}")
            elif len(env_spec.state_groups[name]) != len(elements):
                self._problems.append(
                    f"state group {name!r}: expected {len(elements)} elements, env has {len(env_spec.state_groups[name])}"
                )
        if env_spec.action_dim != ACTION_DIM:
            self._problems.append(f"expected action_dim {ACTION_DIM}, env has {env_spec.action_dim}")
        self._by_instruction: dict[str, Any] = {}
        for task in env_spec.tasks:
            cls = expert_class(task.name)
            if cls is None:
                self._problems.append(f"no Meta-World scripted policy for task {task.name!r}")
            elif task.instruction in self._by_instruction:
                self._problems.append(f"instruction {task.instruction!r} is shared by several tasks")
            else:
                self._by_instruction[task.instruction] = cls()
        self._low = env_spec.action_low.astype(np.float64)
        self._high = env_spec.action_high.astype(np.float64)
        self._slices = [GROUP_SLICES[g] for g in self._groups]
        self._vec = np.empty(OBS_DIM, np.float64)
        # metaworld.policies.policy.move warns on every large proportional step; the env clips anyway
        warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high", category=UserWarning)

    def infer(self, observation: Observation, env_mask: np.ndarray) -> ActionChunk:
        if self._problems:
            raise PolicyError("expert policy cannot run: " + "; ".join(self._problems))
        rows = np.flatnonzero(env_mask)
        state = observation.state
        arrays = [to_numpy(state[g]) for g in self._groups]
        vec, low, high = self._vec, self._low, self._high
        out = np.empty((len(rows), 1, ACTION_DIM), np.float32)
        for k, r in enumerate(rows):
            text = observation.instruction[r]
            expert = self._by_instruction.get(text)
            if expert is None:
                raise PolicyError(
                    f"expert policy: instruction {text!r} of env {r} matches no task of {self.env_spec.name}"
                )
            for arr, sl in zip(arrays, self._slices):
                vec[sl] = arr[r]
            action = np.maximum(expert.get_action(vec), low)
            out[k, 0] = np.minimum(action, high, out=action)
        return ActionChunk(out, observation.env_ids[rows])

    def describe(self) -> PolicyDescription:
        return PolicyDescription(
            family="expert",
            action_horizon=1,
            execution_horizon=1,
            cameras={},
            state={name: len(elements) for name, elements in STATE_GROUPS.items()},
            action_dim=ACTION_DIM,
            uses_instruction=True,
            info={
                "source": "metaworld.policies scripted policies (metaworld 3.1.1)",
                "task_from": "instruction (unique per task)",
            },
            problems=list(self._problems),
        )
