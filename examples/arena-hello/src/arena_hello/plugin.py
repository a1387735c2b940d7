"""A policy family ``hello`` that steers toward a goal read from named state groups.

It works on any env that has state groups ``position`` and ``goal`` of the
same size as its single action group (the built-in ``debug/*`` envs do).
"""

from __future__ import annotations

import attrs
import numpy as np

import arena


@attrs.define
class HelloConfig:
    gain: float = attrs.field(default=5.0, metadata={"help": "proportional gain toward the goal"})


class HelloPolicy(arena.Policy):
    """Move toward the goal: action = clip(gain * (goal - position))."""

    Config = HelloConfig

    def infer(self, observation: arena.Observation, env_mask: np.ndarray) -> arena.ActionChunk:
        rows = np.flatnonzero(env_mask)
        pos = np.asarray(observation.state["position"])[rows]
        goal = np.asarray(observation.state["goal"])[rows]
        low, high = self.env_spec.action_low, self.env_spec.action_high
        action = np.clip(self.config.gain * (goal - pos), low, high).astype(np.float32)
        return arena.ActionChunk(action[:, None, :], observation.env_ids[rows])

    def describe(self) -> arena.PolicyDescription:
        size = self.env_spec.action_dim
        return arena.PolicyDescription(
            family="hello", action_horizon=1, state={"position": size, "goal": size}, action_dim=size
        )


@arena.hookimpl
def arena_register_policies(registry) -> None:
    registry.register("hello", HelloPolicy, help="steer toward the goal (example plugin)")
