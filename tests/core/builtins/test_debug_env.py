"""The built-in ``debug/*`` env family: deterministic resets, dynamics, rendering on request, crashes."""

from __future__ import annotations

import numpy as np
import pytest
from arena_core_testlib import red_block_matches

from arena.builtins.debug_env import DebugEnvConfig, DebugEnvFamily, DebugVectorEnv
from arena.config import make_config
from arena.env import EpisodeSpec
from arena.errors import ConfigError


def make(env_id: str = "reach", n: int = 2, **cfg) -> DebugVectorEnv:
    return DebugEnvFamily().make(env_id, DebugEnvConfig(**cfg), n)


def test_family_ids_and_spec() -> None:
    fam = DebugEnvFamily()
    assert fam.name == "debug"
    assert fam.ids() == ["reach", "suite"]
    spec = make("suite").spec
    assert spec.name == "debug/suite"
    assert [t.name for t in spec.tasks] == ["reach", "reach-far"]
    assert spec.cameras == {"top": (32, 32)}
    assert dict(spec.state_groups) == {"position": ("x", "y"), "goal": ("goal_x", "goal_y")}
    assert spec.action_dim == 2 and spec.action_low.tolist() == [-1, -1] and spec.action_high.tolist() == [1, 1]
    assert spec.max_episode_steps == 50
    assert make("reach", image_size=16).spec.cameras == {"top": (16, 16)}


@pytest.mark.parametrize("size", ["7", "0"])
def test_image_size_is_validated(size: str) -> None:
    with pytest.raises(ConfigError, match=f"--image-size: expected an integer >= 8, got {size}"):
        make_config(DebugEnvConfig, {"image_size": size})


def test_reset_is_a_function_of_the_episode_seed() -> None:
    env = make("suite", n=3)
    eps = [EpisodeSpec("reach", 0, 123), EpisodeSpec("reach", 1, 123), EpisodeSpec("reach-far", 0, 99)]
    res = env.reset([0, 1, 2], eps, np.zeros(3, bool))
    pos, goal = np.asarray(res.observation.state["position"]), np.asarray(res.observation.state["goal"])
    assert np.array_equal(pos[0], pos[1]) and np.array_equal(goal[0], goal[1])  # same seed, other slot
    assert not np.array_equal(pos[0], pos[2])
    assert ((0.1 <= pos) & (pos <= 0.3)).all()
    assert ((0.4 <= goal[:2]) & (goal[:2] <= 0.6)).all()  # reach
    assert ((0.7 <= goal[2]) & (goal[2] <= 0.9)).all()  # reach-far
    assert res.observation.instruction == [
        "move the point to the green goal",
        "move the point to the green goal",
        "move the point to the far green goal",
    ]
    assert res.success.tolist() == [False] * 3 and res.error == [None] * 3
    res.observation.validate(env.spec)
    # resetting slot 2 with the first episode reproduces it there
    again = env.reset([2], [eps[0]], np.zeros(1, bool)).observation
    assert np.array_equal(np.asarray(again.state["position"])[2], pos[0])


def test_step_moves_a_tenth_of_the_clipped_action_and_only_the_given_slots() -> None:
    env = make(n=2)
    obs = env.reset([0, 1], [EpisodeSpec("reach", 0, 1), EpisodeSpec("reach", 1, 2)], np.zeros(2, bool)).observation
    start = np.array(obs.state["position"], copy=True)
    res = env.step([1], np.array([[5.0, -0.5]], np.float32), np.zeros(1, bool))
    pos = np.asarray(res.observation.state["position"])
    assert pos[1] == pytest.approx(start[1] + np.array([0.1, -0.05]), abs=1e-6)  # x clipped to 1
    assert np.array_equal(pos[0], start[0])
    assert res.env_ids.tolist() == [1]


def test_position_stays_in_the_unit_square() -> None:
    env = make(n=1)
    env.reset([0], [EpisodeSpec("reach", 0, 1)], np.zeros(1, bool))
    for _ in range(5):
        res = env.step([0], np.array([[-1.0, -1.0]], np.float32), np.zeros(1, bool))
    assert np.asarray(res.observation.state["position"])[0].tolist() == [0.0, 0.0]


def test_success_within_the_radius() -> None:
    env = make(n=1)
    obs = env.reset([0], [EpisodeSpec("reach", 0, 5)], np.zeros(1, bool)).observation
    successes = []
    for _ in range(10):
        pos, goal = np.asarray(obs.state["position"])[0], np.asarray(obs.state["goal"])[0]
        a = np.clip((goal - pos) / 0.1, -1, 1)[None].astype(np.float32)
        res = env.step([0], a, np.zeros(1, bool))
        obs = res.observation
        successes.append(bool(res.success[0]))
        if res.success[0]:
            break
    assert successes[-1] and not any(successes[:-1])
    pos, goal = np.asarray(obs.state["position"])[0], np.asarray(obs.state["goal"])[0]
    assert np.linalg.norm(pos - goal) < 0.05


def test_renders_only_the_rows_asked_for() -> None:
    env = make(n=3)
    eps = [EpisodeSpec("reach", i, i + 10) for i in range(3)]
    res = env.reset([0, 1, 2], eps, np.array([True, False, True]))
    assert env.render_count() == 2
    img = np.asarray(res.observation.images["top"])
    assert img.shape == (3, 32, 32, 3) and img.dtype == np.uint8
    pos = np.asarray(res.observation.state["position"])
    assert red_block_matches(img[0], pos[0]) and red_block_matches(img[2], pos[2])
    assert not img[1].any()  # never rendered
    assert (np.all(img[0] == [0, 255, 0], axis=-1)).any()  # the goal is drawn in green
    env.step([0, 1, 2], np.ones((3, 2), np.float32), np.array([False, True, False]))
    assert env.render_count() == 3
    img = np.asarray(env.observe([0], np.array([True])).images["top"])
    assert env.render_count() == 4
    pos = np.asarray(env.observe([], np.zeros(0, bool)).state["position"])
    assert red_block_matches(img[0], pos[0]) and red_block_matches(img[1], pos[1])
    assert not red_block_matches(img[2], pos[2])  # stale: rendered before the step moved it


def test_crash_episodes_fail_on_step_three() -> None:
    env = make(n=2, crash_episodes=(4,))
    env.reset([0, 1], [EpisodeSpec("reach", 4, 1), EpisodeSpec("reach", 5, 1)], np.zeros(2, bool))
    errors = [env.step([0, 1], np.zeros((2, 2), np.float32), np.zeros(2, bool)).error for _ in range(3)]
    assert errors[:2] == [[None, None], [None, None]]
    assert errors[2] == ["RuntimeError: debug env crashed on purpose at step 3 of episode 4", None]
