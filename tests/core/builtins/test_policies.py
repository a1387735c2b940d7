"""Built-in policy families ``zero`` and ``random``."""

from __future__ import annotations

import numpy as np
import pytest

from arena.builtins.debug_env import DebugEnvConfig, DebugVectorEnv
from arena.builtins.policies import RandomConfig, RandomPolicy, ZeroConfig, ZeroPolicy
from arena.config import make_config
from arena.contract import ActionGroup, EnvSpec, Task
from arena.env import EpisodeSpec
from arena.errors import ConfigError


def observation(n: int):
    env = DebugVectorEnv("reach", DebugEnvConfig(), n)
    return env.spec, env.reset(
        list(range(n)), [EpisodeSpec("reach", i, i) for i in range(n)], np.zeros(n, bool)
    ).observation


def test_random_is_reproducible_per_episode_seed_whatever_the_slot() -> None:
    spec, obs = observation(3)
    a = RandomPolicy(RandomConfig(action_horizon=4), spec, 3)
    a.reset([0, 1, 2], [7, 8, 9])
    first = a.infer(obs, np.array([True, True, True]))
    b = RandomPolicy(RandomConfig(action_horizon=4), spec, 3)
    b.reset([2], [7])  # episode seeded 7 now runs in slot 2
    second = b.infer(obs, np.array([False, False, True]))
    assert second.env_ids.tolist() == [2]
    assert np.array_equal(second.numpy()[0], first.numpy()[0])
    assert first.numpy().shape == (3, 4, 2)
    assert not np.array_equal(first.numpy()[0], first.numpy()[1])


def test_random_stays_within_the_action_bounds() -> None:
    spec = EnvSpec(
        name="t/x",
        embodiment="e",
        cameras={},
        state_groups={},
        action_groups=(ActionGroup("a", ("u", "v"), low=[2, -0.1], high=[3, 0.1]),),
        tasks=(Task("t", "t"),),
        max_episode_steps=1,
    )
    _, obs = observation(2)
    p = RandomPolicy(RandomConfig(action_horizon=50), spec, 2)
    p.reset([0, 1], None)
    acts = p.infer(obs, np.array([True, True])).numpy()
    assert (acts[..., 0] >= 2).all() and (acts[..., 0] <= 3).all()
    assert (np.abs(acts[..., 1]) <= 0.1).all()


def test_zero_returns_the_hold_action() -> None:
    spec, obs = observation(2)
    chunk = ZeroPolicy(ZeroConfig(action_horizon=3), spec, 2).infer(obs, np.array([False, True]))
    assert chunk.env_ids.tolist() == [1]
    assert chunk.numpy().tolist() == [[[0.0, 0.0]] * 3]
    desc = ZeroPolicy(ZeroConfig(), spec, 2).describe()
    assert (desc.family, desc.action_horizon, desc.action_dim, dict(desc.cameras)) == ("zero", 1, 2, {})


def test_describe_random() -> None:
    spec, _ = observation(1)
    desc = RandomPolicy(RandomConfig(action_horizon=5), spec, 1).describe()
    assert (desc.family, desc.action_horizon, desc.action_dim, dict(desc.cameras)) == ("random", 5, 2, {})


@pytest.mark.parametrize("cls", [RandomConfig, ZeroConfig])
def test_action_horizon_is_validated(cls) -> None:
    with pytest.raises(ConfigError, match="--action-horizon: expected an integer >= 1, got 0"):
        make_config(cls, {"action_horizon": "0"})
