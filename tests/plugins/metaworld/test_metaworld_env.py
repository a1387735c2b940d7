"""The Meta-World VectorEnv against real MuJoCo: state groups, seeding, images, render counting,
the expert, in-process vs worker-pool equivalence, and worker death handling."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from metaworld_testlib import project, run_plan

from arena.env import EpisodeSpec
from arena_metaworld.config import MetaWorldConfig
from arena_metaworld.expert import ExpertPolicy
from arena_metaworld.layout import GROUP_SLICES, OBS_DIM
from arena_metaworld.sim import make_env, seeded_reset
from arena_metaworld.vector_env import MetaWorldVectorEnv

NO = np.zeros(1, bool)


def flat(obs, row: int = 0) -> np.ndarray:  # noqa: ANN001
    """The 39-d vector of ``row`` reassembled from the named groups."""
    out = np.empty(OBS_DIM, np.float32)
    for name, sl in GROUP_SLICES.items():
        out[sl] = obs.state[name][row]
    return out


def test_state_groups_are_metaworld_observation(single) -> None:  # noqa: ANN001
    res = single.reset([0], [EpisodeSpec("pick-place-v3", 0, 11)], NO)
    assert res.error == [None]
    res.observation.validate(single.spec)
    raw = seeded_reset(make_env("pick-place-v3"), 11)
    np.testing.assert_array_equal(flat(res.observation), raw.astype(np.float32))
    obs = res.observation
    for name, elements in single.spec.state_groups.items():
        assert obs.state[name].shape == (1, len(elements)) and obs.state[name].dtype == np.float32
    assert obs.state["goal"][0].any(), "the goal is observable (MT setting), not zeroed"
    assert obs.state["gripper"][0, 0] == pytest.approx(1.0, abs=0.05), "gripper starts open"
    assert not obs.state["obj2_pos"][0].any(), "pick-place has one object: obj2 is padding"
    assert obs.instruction == ["pick up the puck and place it at the goal"]


def test_same_seed_same_initial_state_after_other_episodes(single) -> None:  # noqa: ANN001
    first = flat(single.reset([0], [EpisodeSpec("push-v3", 0, 5)], NO).observation)
    rng = np.random.default_rng(0)
    for _ in range(20):
        single.step([0], rng.uniform(-1, 1, (1, 4)).astype(np.float32), NO)
    single.reset([0], [EpisodeSpec("reach-v3", 0, 6)], NO)  # another task in between
    again = flat(single.reset([0], [EpisodeSpec("push-v3", 1, 5)], NO).observation)
    other = flat(single.reset([0], [EpisodeSpec("push-v3", 2, 6)], NO).observation)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first[GROUP_SLICES["obj1_pos"]], other[GROUP_SLICES["obj1_pos"]])


def test_same_seed_same_initial_state_in_every_worker(single, pool) -> None:  # noqa: ANN001
    ep = EpisodeSpec("pick-place-v3", 0, 1234)
    res = pool.reset([0, 1, 2], [ep, ep, ep], np.zeros(3, bool))
    assert res.error == [None, None, None]
    rows = [flat(res.observation, i) for i in range(3)]
    local = flat(single.reset([0], [ep], NO).observation)
    pids = {pool.worker_pid(i) for i in range(3)}
    assert len(pids) == 3 and os.getpid() not in pids
    for row in rows:
        np.testing.assert_array_equal(row, local)


def test_unknown_task_is_a_reset_error(single) -> None:  # noqa: ANN001
    res = single.reset([0], [EpisodeSpec("hammer-v3", 0, 1)], NO)  # not part of mt10
    assert res.error[0] is not None and "hammer-v3" in res.error[0]


def test_images_upright_uint8_hwc() -> None:
    """Known-scene pixel check: the puck (dark red) is where the camera model projects it.

    Meta-World's ``corner`` camera is mounted upside down: the raw frame shows the
    puck at the 180-degree rotated position; the env's frame shows it where an
    upright camera sees it (and the table fills the lower part, the wall the top).
    """
    h = w = 224
    env = MetaWorldVectorEnv("pick-place-v3", MetaWorldConfig(cameras=("corner", "topview")), 1)
    raw_env = MetaWorldVectorEnv("pick-place-v3", MetaWorldConfig(cameras=("corner",), upright=False), 1)
    try:
        res = env.reset([0], [EpisodeSpec("pick-place-v3", 0, 3)], np.ones(1, bool))
        img = res.observation.images["corner"][0]
        assert img.shape == (h, w, 3) and img.dtype == np.uint8
        sim = env.runner.sims[0]
        row, col = project(sim.env.model, sim.env.data, "corner", res.observation.state["obj1_pos"][0], h, w)
        r, c = h - 1 - round(row), w - 1 - round(col)  # upright = raw rotated by 180 degrees
        puck = img[r - 1 : r + 2, c - 1 : c + 2].reshape(-1, 3).mean(0)
        assert puck[0] > 70 and puck[1] < 20 and puck[2] < 20, puck
        rotated_back = img[h - 1 - r, w - 1 - c]
        assert not (rotated_back[0] > 70 and rotated_back[1] < 20), rotated_back
        top, bottom = img[:10].reshape(-1, 3).astype(int), img[-60:].reshape(-1, 3).astype(int)
        gray = lambda px: (np.abs(px[:, 0] - px[:, 1]) < 12) & (np.abs(px[:, 1] - px[:, 2]) < 12)  # noqa: E731
        assert gray(top).mean() > 0.9, "the top of an upright corner frame is the plain back wall"
        assert gray(bottom).mean() < 0.7, "the bottom shows the (wooden) table"
        # topview is mounted upright: no rotation, the puck is at its projection as is
        top_img = res.observation.images["topview"][0]
        row, col = project(sim.env.model, sim.env.data, "topview", res.observation.state["obj1_pos"][0], h, w)
        assert top_img[round(row), round(col)][0] > 100 > top_img[round(row), round(col)][1]
        raw = raw_env.reset([0], [EpisodeSpec("pick-place-v3", 0, 3)], np.ones(1, bool)).observation.images["corner"][0]
        np.testing.assert_array_equal(raw, img[::-1, ::-1])
    finally:
        env.close()
        raw_env.close()


def test_renders_only_where_asked(single, pool) -> None:  # noqa: ANN001
    ep = EpisodeSpec("reach-v3", 0, 7)
    zero = np.zeros((1, 4), np.float32)
    n0 = single.render_count()
    res = single.reset([0], [ep], NO)
    before = res.observation.images["corner"][0].copy()
    for _ in range(7):
        single.step([0], zero, NO)
    assert single.render_count() == n0
    np.testing.assert_array_equal(single._obs.images["corner"][0], before)
    single.step([0], zero, np.ones(1, bool))
    assert single.render_count() == n0 + 2  # both cameras, once
    single.observe([0], np.ones(1, bool))
    assert single.render_count() == n0 + 4

    p0 = pool.render_count()
    pool.reset([0, 1, 2], [ep, ep, ep], np.array([False, True, False]))
    assert pool.render_count() == p0 + 2
    res = pool.step([0, 1, 2], np.zeros((3, 4), np.float32), np.zeros(3, bool))
    assert pool.render_count() == p0 + 2
    res = pool.step([0, 2], np.zeros((2, 4), np.float32), np.array([True, False]))
    assert pool.render_count() == p0 + 4
    img = res.observation.images["topview"]
    assert img[0].any() and img[1].any() and not img[2].any()


def test_chunked_policy_renders_once_per_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through arena's evaluator: a camera policy with chunks of 8 gets one image per chunk, not per step."""
    from metaworld_testlib import ZeroChunkCameraPolicy

    import arena

    renders: list[int] = []
    close = MetaWorldVectorEnv.close

    def recording_close(self: MetaWorldVectorEnv) -> None:
        renders.append(self.render_count())
        close(self)

    monkeypatch.setattr(MetaWorldVectorEnv, "close", recording_close)
    env_config = MetaWorldConfig(cameras=("corner",), image_height=32, image_width=32)
    summary = arena.evaluate(
        ZeroChunkCameraPolicy,
        "metaworld/reach-v3",
        episodes=2,
        max_steps=48,
        seed=0,
        env_config=env_config,
        write=False,
    )
    steps = summary.overall.episodes * summary.overall.mean_length
    assert steps == 96
    # per episode: the reset image, then one image per chunk of 8 steps
    assert 0 < renders[0] <= steps / 8 + summary.overall.episodes, renders


def test_expert_succeeds(single) -> None:  # noqa: ANN001
    policy = ExpertPolicy(None, single.spec, 1)
    plan = [
        EpisodeSpec(t, i, 100 + i) for t in ("reach-v3", "drawer-open-v3", "button-press-topdown-v3") for i in range(2)
    ]
    out = run_plan(single, policy, plan, 300)
    assert all(ok for ok, _, _ in out.values()), out


def test_one_slot_and_three_workers_give_identical_outcomes(single, pool) -> None:  # noqa: ANN001
    plan = [EpisodeSpec(t, i, 7 * i + 1) for t in ("push-v3", "pick-place-v3", "window-open-v3") for i in range(2)]
    one = run_plan(single, ExpertPolicy(None, single.spec, 1), plan, 150)
    three = run_plan(pool, ExpertPolicy(None, pool.spec, 3), plan, 150)
    assert one == three
    assert any(ok for ok, _, _ in one.values())


def test_killed_worker_is_reported_and_replaced(pool) -> None:  # noqa: ANN001
    eps = [EpisodeSpec("reach-v3", 0, s) for s in (1, 2, 3)]
    assert pool.reset([0, 1, 2], eps, np.zeros(3, bool)).error == [None, None, None]
    act = np.zeros((3, 4), np.float32)
    pool.step([0, 1, 2], act, np.zeros(3, bool))
    victim = pool.worker_pid(1)
    os.kill(victim, signal.SIGKILL)
    t0 = time.monotonic()
    res = pool.step([0, 1, 2], act, np.zeros(3, bool))
    assert time.monotonic() - t0 < 10
    assert res.error[0] is None and res.error[2] is None
    assert res.error[1] is not None and "worker died" in res.error[1] and "-9" in res.error[1], res.error[1]
    assert res.lost is not None and res.lost.tolist() == [False, True, False]  # infrastructure, not the env
    assert pool.worker_pid(1) != victim
    res = pool.reset([1], [EpisodeSpec("reach-v3", 1, 2)], np.zeros(1, bool))
    assert res.error == [None]
    res = pool.step([0, 1, 2], act, np.zeros(3, bool))
    assert res.error == [None, None, None]


def test_hung_worker_times_out_and_is_replaced(pool) -> None:  # noqa: ANN001
    eps = [EpisodeSpec("reach-v3", 0, s) for s in (1, 2, 3)]
    pool.reset([0, 1, 2], eps, np.zeros(3, bool))
    saved = pool.runner.timeout_s
    pool.runner.timeout_s = 2.0
    victim = pool.worker_pid(2)
    try:
        os.kill(victim, signal.SIGSTOP)
        res = pool.step([0, 1, 2], np.zeros((3, 4), np.float32), np.zeros(3, bool))
    finally:
        pool.runner.timeout_s = saved
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert res.error[:2] == [None, None]
    assert res.error[2] is not None and "timed out" in res.error[2]
    assert pool.worker_pid(2) != victim
    assert pool.reset([2], [eps[2]], np.zeros(1, bool)).error == [None]


def test_close_stops_every_worker(pool) -> None:  # noqa: ANN001
    procs = [w.proc for w in pool.runner.workers]
    pool.close()
    assert not any(p.is_alive() for p in procs)
    pool.close()  # idempotent
