"""Built-in policy families ``zero`` and ``random``: baselines and smoke tests."""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np

import arena
from arena.contract import ActionChunk, Observation
from arena.policy import Policy, PolicyDescription
from arena.validators import at_least

_horizon = at_least(1, kind="an integer")


@attrs.define
class ZeroConfig:
    action_horizon: int = attrs.field(default=1, validator=_horizon, metadata={"help": "length of each returned chunk"})


class ZeroPolicy(Policy):
    """Always the env's hold action (zeros for delta control): the do-nothing baseline."""

    Config = ZeroConfig

    def infer(self, observation: Observation, env_mask: np.ndarray) -> ActionChunk:
        ids = np.flatnonzero(env_mask)
        actions = np.broadcast_to(self.env_spec.hold, (len(ids), self.config.action_horizon, self.env_spec.action_dim))
        return ActionChunk(np.array(actions, np.float32), observation.env_ids[ids])

    def describe(self) -> PolicyDescription:
        return PolicyDescription(
            family="zero", action_horizon=self.config.action_horizon, action_dim=self.env_spec.action_dim
        )


@attrs.define
class RandomConfig:
    action_horizon: int = attrs.field(default=1, validator=_horizon, metadata={"help": "length of each returned chunk"})


class RandomPolicy(Policy):
    """Uniform samples within the env's action bounds, reproducible per episode (seeded at reset)."""

    Config = RandomConfig

    def __init__(self, config: RandomConfig, env_spec: arena.EnvSpec, num_envs: int) -> None:
        super().__init__(config, env_spec, num_envs)
        self._rngs = [np.random.default_rng(i) for i in range(num_envs)]
        self._low = env_spec.action_low
        self._high = env_spec.action_high

    def reset(self, env_ids: Sequence[int], seeds: Sequence[int] | None = None) -> None:
        for k, i in enumerate(env_ids):
            self._rngs[int(i)] = np.random.default_rng(None if seeds is None else seeds[k])

    def infer(self, observation: Observation, env_mask: np.ndarray) -> ActionChunk:
        ids = np.flatnonzero(env_mask)
        shape = (self.config.action_horizon, self.env_spec.action_dim)
        actions = np.stack([self._rngs[i].uniform(self._low, self._high, size=shape) for i in ids]).astype(np.float32)
        return ActionChunk(actions, observation.env_ids[ids])

    def describe(self) -> PolicyDescription:
        return PolicyDescription(
            family="random", action_horizon=self.config.action_horizon, action_dim=self.env_spec.action_dim
        )


@arena.hookimpl
def arena_register_policies(registry) -> None:
    registry.register("zero", ZeroPolicy, help="always the hold action (zeros): do-nothing baseline")
    registry.register("random", RandomPolicy, help="uniform random actions within the env's bounds")
