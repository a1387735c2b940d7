"""Real LIBERO scenes: initial states whatever the number of slots, frames upright against robosuite's own
renderer, rendering only when read, and a SIGKILLed worker's episode re-run from its initial state."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from arena_libero.config import LiberoConfig
from arena_libero.expert import LiberoExpert
from arena_libero.sim import LiberoSim
from arena_libero.vector_env import LiberoVectorEnv
from libero_testlib import SUITE, TASKS, outcomes

from arena.env import EpisodeSpec
from arena.evaluator import Evaluator, plan_episodes
from arena.schedulers import ChunkedConfig, ChunkedScheduler

pytestmark = pytest.mark.timeout(300)

SMALL = LiberoConfig(image_size=64, privileged=True)


def initial(env: LiberoVectorEnv, slots: list[int], episodes: list[EpisodeSpec]) -> dict[int, tuple]:
    res = env.reset(slots, episodes, np.ones(len(slots), bool))
    assert res.error == [None] * len(slots)
    obs = res.observation
    return {
        ep.index: (
            np.concatenate([np.asarray(obs.state[g][s]) for g in env.spec.state_groups]),
            {c: np.array(obs.images[c][s]) for c in env.spec.cameras},
        )
        for s, ep in zip(slots, episodes)
    }


def test_episode_i_starts_from_the_same_state_whatever_the_number_of_slots() -> None:
    eps = [EpisodeSpec(TASKS[0], i, 1000 + i) for i in (0, 1, 50)]
    one = LiberoVectorEnv(SUITE, SMALL, 1)
    try:
        alone = {}
        for ep in eps:
            alone.update(initial(one, [0], [ep]))
    finally:
        one.close()
    two = LiberoVectorEnv(SUITE, SMALL, 2)  # two worker processes
    try:
        assert two.worker_pid(0) is not None
        spread = initial(two, [1, 0], eps[:2])
        spread.update(initial(two, [0], [eps[2]]))
    finally:
        two.close()
    for i in (0, 1, 50):
        np.testing.assert_allclose(spread[i][0], alone[i][0], atol=1e-5)
        for cam in SMALL.cameras:
            assert np.abs(spread[i][1][cam].astype(int) - alone[i][1][cam]).mean() < 1.0
    assert not np.allclose(alone[0][0], alone[1][0])  # episodes 0 and 1: different initial states
    np.testing.assert_allclose(alone[50][0], alone[0][0], atol=1e-5)  # 50 init states: episode 50 is state 0


def test_frames_are_robosuites_upright_and_rendered_only_when_read() -> None:
    from robosuite.utils.binding_utils import MjRenderContextOffscreen

    sim = LiberoSim(SUITE, SMALL)
    try:
        state = np.zeros(29, np.float32)
        sim.reset(EpisodeSpec(TASKS[0], 0, 0), state)
        frames = {c: np.zeros((64, 64, 3), np.uint8) for c in SMALL.cameras}
        assert sim.render(frames) == 2
        sim.env.sim.add_render_context(MjRenderContextOffscreen(sim.env.sim, device_id=-1))
        for cam, name in (("agentview", "agentview"), ("eye_in_hand", "robot0_eye_in_hand")):
            raw = sim.env.sim.render(camera_name=name, width=64, height=64)  # bottom row first (OpenGL)
            assert np.abs(raw[::-1].astype(int) - frames[cam]).mean() < 1.0
            assert np.abs(raw.astype(int) - frames[cam]).mean() > 20.0
    finally:
        sim.close()
    env = LiberoVectorEnv(f"{SUITE}/{TASKS[0]}", SMALL, 1)
    try:
        env.reset([0], [EpisodeSpec(TASKS[0], 0, 0)], np.zeros(1, bool))
        env.step_chunk([0], np.zeros((1, 3, 7), np.float32), np.array([3]), np.zeros(1, bool))
        assert env.render_count() == 0
        env.step_chunk([0], np.zeros((1, 1, 7), np.float32), np.array([1]), np.ones(1, bool))
        assert env.render_count() == 2  # both cameras, once
    finally:
        env.close()


class KillingExpert(LiberoExpert):
    """The expert; at its 40th query for slot 1 it SIGKILLs that slot's worker (mid-episode)."""

    env: LiberoVectorEnv
    queries = 0
    killed = 0

    def infer(self, observation, env_mask):  # noqa: ANN001, ANN202
        if env_mask[1]:
            self.queries += 1
            if self.queries == 40:
                os.kill(self.env.worker_pid(1), signal.SIGKILL)
                self.killed += 1
        return super().infer(observation, env_mask)


def test_a_sigkilled_worker_changes_no_outcome() -> None:
    config = LiberoConfig(cameras=(), privileged=True)
    plan = plan_episodes(list(TASKS), 1, 0)

    def run(env: LiberoVectorEnv, policy: LiberoExpert) -> tuple[list, Evaluator]:
        records: list = []
        sched = ChunkedScheduler(ChunkedConfig(), env.num_envs, env.spec.action_dim, 1)
        ev = Evaluator(env, policy, sched, plan, env.spec.max_episode_steps, records.append)
        ev.run()
        return records, ev

    env = LiberoVectorEnv(SUITE, config, 1)
    try:
        reference, _ = run(env, LiberoExpert(None, env.spec, 1))
    finally:
        env.close()
    env = LiberoVectorEnv(SUITE, config, 2)
    try:
        policy = KillingExpert(None, env.spec, 2)
        policy.env = env
        records, ev = run(env, policy)
    finally:
        env.close()
    assert policy.killed == 1 and ev.ledger.lost == 1
    assert outcomes(records) == outcomes(reference)  # the killed episode ran again from its initial state
    assert all(r.success for r in records) and not any(r.error for r in records)


def test_an_episode_after_another_matches_the_published_hard_reset() -> None:
    """The published clients build the env with hard_reset=True (a model reload per episode); arena resets
    softly. After another episode ran, the same initial state and actions give the same trajectory."""
    from arena_libero.sim import NOOP
    from arena_libero.tasks import bddl_file, init_states
    from libero.libero.envs.env_wrapper import ControlEnv

    task = TASKS[0]
    sim = LiberoSim(SUITE, LiberoConfig(cameras=()))
    actions = np.random.default_rng(0).uniform(-1, 1, (30, 7))
    try:
        state = np.zeros(19, np.float32)
        sim.reset(EpisodeSpec(task, 2, 0), state)
        sim.step(actions[0], state)
        sim.reset(EpisodeSpec(task, 1, 0), state)
        ours = [state[[0, 1, 2, 10, 11]].copy()]
        for a in actions:
            sim.step(a, state)
            ours.append(state[[0, 1, 2, 10, 11]].copy())
    finally:
        sim.close()
    env = ControlEnv(
        bddl_file_name=bddl_file(SUITE, task), use_camera_obs=False, has_offscreen_renderer=False, camera_names=[]
    )
    try:
        assert env.env.hard_reset
        env.reset()
        obs = env.set_init_state(init_states(SUITE, task)[1])
        for _ in range(10):
            obs, *_ = env.step(NOOP)
        theirs = [np.concatenate([obs["robot0_eef_pos"], obs["robot0_gripper_qpos"]])]
        for a in actions:
            obs, *_ = env.step(a)
            theirs.append(np.concatenate([obs["robot0_eef_pos"], obs["robot0_gripper_qpos"]]))
    finally:
        env.close()
    np.testing.assert_allclose(np.array(ours), np.array(theirs), atol=1e-5)


@pytest.mark.parametrize(
    "suite,task",
    [("libero_goal", "turn_on_the_stove"), ("libero_goal", "open_the_middle_drawer_of_the_cabinet")],
)
def test_privileged_poses_of_fixtures_and_regions(suite: str, task: str) -> None:
    """Goals naming a fixture (a stove) or a region (a drawer) as their object still give poses."""
    from arena_libero.layout import slices

    sl = slices(True)
    sim = LiberoSim(suite, LiberoConfig(cameras=(), privileged=True))
    try:
        state = np.zeros(max(s.stop for s in sl.values()), np.float32)
        sim.reset(EpisodeSpec(task, 0, 0), state)
    finally:
        sim.close()
    pos, quat = state[sl["object_pos"]], state[sl["object_quat"]]
    assert np.isfinite(state).all() and pos[2] > 0.5  # on the kitchen table, not the origin
    assert abs(np.linalg.norm(quat) - 1.0) < 1e-4
    np.testing.assert_array_equal(state[sl["target_pos"]], pos)  # no target: the object itself
