"""The evaluation loop: exact accounting, seeds, independence from num_envs, env failures,
step limits, policy errors and rendering only when needed, on the real ``debug/*`` envs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import pytest
from arena_core_testlib import (
    CameraGoalPolicy,
    Factory,
    GoalConfig,
    GoalSeekingPolicy,
    ceil_div,
    evaluate_records,
    outcomes,
    red_block_matches,
)

from arena.builtins.debug_env import DebugEnvConfig, DebugVectorEnv
from arena.contract import ActionChunk, Task
from arena.env import EpisodeSpec
from arena.errors import PolicyError
from arena.evaluator import Evaluator, FrameSink, episode_seed, plan_episodes
from arena.schedulers import ChunkedConfig, ChunkedScheduler

# -- planning ------------------------------------------------------------------------------------


def test_plan_episodes_task_by_task_with_derived_seeds() -> None:
    plan = plan_episodes([Task("a", "x"), "b"], 2, seed=5)
    assert [(e.task, e.index) for e in plan] == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    assert [e.seed for e in plan] == [episode_seed(5, t, i) for t, i in (("a", 0), ("a", 1), ("b", 0), ("b", 1))]
    assert len({e.seed for e in plan}) == 4


def test_episode_seeds_are_stable() -> None:
    # Published results name these seeds: changing the derivation changes every episode of every suite.
    assert episode_seed(0, "reach", 0) == 3169154218
    assert episode_seed(0, "reach", 1) == 4293555563
    assert episode_seed(7, "reach-far", 3) == 1298732371


# -- accounting ------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_envs", [1, 3, 8])
def test_every_planned_episode_is_recorded_exactly_once(num_envs: int) -> None:
    summary, records = evaluate_records(Factory(), "debug/suite", episodes=4, num_envs=num_envs, seed=3)
    assert len(records) == 2 * 4
    keys = Counter((r.task, r.episode_index) for r in records)
    assert keys == Counter({(t, i): 1 for t in ("reach", "reach-far") for i in range(4)})
    planned = {(e.task, e.index): e.seed for e in plan_episodes(["reach", "reach-far"], 4, 3)}
    assert {(r.task, r.episode_index): r.seed for r in records} == planned
    assert summary.overall.episodes == 8
    assert summary.tasks["reach"].episodes == summary.tasks["reach-far"].episodes == 4
    assert all(0 <= r.env_slot < num_envs for r in records)


def test_more_slots_than_episodes_starts_nothing_extra() -> None:
    factory = Factory()
    _, records = evaluate_records(factory, "debug/reach", episodes=2, num_envs=5)
    assert sorted(r.episode_index for r in records) == [0, 1]
    # only the two slots that got an episode were ever reset or queried
    assert factory.policy.resets[0] == [0, 1]
    assert all(not m[2:].any() for m in factory.policy.masks)


@pytest.mark.parametrize(
    "policy, kwargs",
    [
        ("random", {"policy_config": {"action_horizon": 3}, "scheduler_config": {"execution_horizon": 2}}),
        (Factory(GoalSeekingPolicy, action_horizon=2), {}),
    ],
    ids=["random", "goal-seeking"],
)
def test_outcomes_do_not_depend_on_num_envs(policy, kwargs: dict) -> None:
    runs = {n: evaluate_records(policy, "debug/suite", episodes=5, num_envs=n, seed=11, **kwargs)[1] for n in (1, 3, 4)}
    assert outcomes(runs[1]) == outcomes(runs[3]) == outcomes(runs[4])
    assert len(runs[1]) == 10
    # and the slots really ran in parallel
    assert {r.env_slot for r in runs[4]} == {0, 1, 2, 3}


def test_random_policy_outcomes_mix_successes_and_failures() -> None:
    # guards the test above: with only failures, outcome equality would say little
    _, records = evaluate_records("random", "debug/suite", episodes=5, seed=11, policy_config={"action_horizon": 3})
    assert {r.success for r in records} == {True, False}


def test_same_seed_same_episodes_other_seed_other_episodes() -> None:
    a = evaluate_records(Factory(), "debug/suite", episodes=4, seed=1)[1]
    b = evaluate_records(Factory(), "debug/suite", episodes=4, seed=1, num_envs=2)[1]
    c = evaluate_records(Factory(), "debug/suite", episodes=4, seed=2)[1]
    assert outcomes(a) == outcomes(b)
    assert [o[2] for o in outcomes(a)] != [o[2] for o in outcomes(c)]  # seeds
    assert [o[4] for o in outcomes(a)] != [o[4] for o in outcomes(c)]  # and so the episodes themselves


def test_policy_is_reset_with_each_episode_seed() -> None:
    class SeedRecorder(GoalSeekingPolicy):
        seen: list[int] = []

        def reset(self, env_ids: Sequence[int], seeds: Sequence[int] | None = None) -> None:
            assert seeds is not None and len(seeds) == len(env_ids)
            type(self).seen.extend(int(s) for s in seeds)

    SeedRecorder.seen = []
    evaluate_records(SeedRecorder, "debug/reach", episodes=5, num_envs=2, seed=4)
    assert sorted(SeedRecorder.seen) == sorted(e.seed for e in plan_episodes(["reach"], 5, 4))


class LosesSomeEpisodes(GoalSeekingPolicy):
    """Reports every third episode start lost (as a dropped protocol session would), once per slot episode."""

    queries = 0

    def reset(self, env_ids: Sequence[int], seeds: Sequence[int] | None = None) -> None:
        super().reset(env_ids, seeds)
        self.fresh = set(getattr(self, "fresh", set())) | {int(i) for i in env_ids}

    def infer(self, observation, env_mask):
        chunk = super().infer(observation, env_mask)
        lost = {}
        for i in chunk.env_ids.tolist():
            if i in self.fresh:
                self.fresh.discard(i)
                type(self).queries += 1
                if type(self).queries % 3 == 0:
                    lost[i] = "session dropped"
        return ActionChunk(chunk.actions, chunk.env_ids, lost=lost)


@pytest.mark.parametrize(("num_envs", "stages"), [(1, 1), (3, 1), (4, 2)])
def test_episodes_a_policy_reports_lost_run_again_with_their_seeds(num_envs: int, stages: int) -> None:
    LosesSomeEpisodes.queries = 0
    kw = {"episodes": 4, "num_envs": num_envs, "seed": 3, "stages": stages}
    summary, records = evaluate_records(LosesSomeEpisodes, "debug/suite", **kw)
    _, reference = evaluate_records(Factory(), "debug/suite", **kw)
    assert Counter((r.task, r.episode_index) for r in records) == Counter(
        {(t, i): 1 for t in ("reach", "reach-far") for i in range(4)}
    )
    assert outcomes(records) == outcomes(reference)  # same seeds, same results: nothing continued half-way
    assert LosesSomeEpisodes.queries > 8 and summary.overall.episodes == 8


# -- env failures and step limits ------------------------------------------------------------------------


def test_env_errors_are_failed_episodes_and_the_run_goes_on() -> None:
    summary, records = evaluate_records(
        "zero", "debug/reach", episodes=5, num_envs=2, max_steps=10, env_config={"crash_episodes": "1,3"}
    )
    by_index = {r.episode_index: r for r in records}
    assert sorted(by_index) == [0, 1, 2, 3, 4]
    for i in (1, 3):
        r = by_index[i]
        assert (r.success, r.error, r.length) == (False, True, 3)
        assert r.failure_reason == f"env_error: RuntimeError: debug env crashed on purpose at step 3 of episode {i}"
    for i in (0, 2, 4):
        r = by_index[i]
        assert (r.success, r.error, r.length, r.failure_reason) == (False, False, 10, "max_steps")
    assert summary.overall.errors == 2
    assert summary.tasks["reach"].errors == 2
    assert summary.overall.episodes == 5


class FlakyEnv(DebugVectorEnv):
    """Raises (instead of reporting an error) on the reset of episode 0 and on step 2 of episode 3."""

    def reset(self, env_ids, episodes, render):
        if any(ep.index == 0 for ep in episodes):
            raise RuntimeError("reset exploded")
        return super().reset(env_ids, episodes, render)

    def step(self, env_ids, actions, render):
        for i in env_ids:
            ep = self._episode[i]
            if ep is not None and ep.index == 3 and self._t[i] == 1:
                raise RuntimeError("step exploded")
        return super().step(env_ids, actions, render)


def run_evaluator(
    env, policy, episodes: list[EpisodeSpec], max_steps: int = 50, execution: int | None = None, frames=None
):
    desc = policy.describe()
    sched = ChunkedScheduler(
        ChunkedConfig(execution),
        env.num_envs,
        env.spec.action_dim,
        desc.action_horizon,
        hold_action=env.spec.hold,
        suggested_execution=desc.execution_horizon,
    )
    records = []
    ev = Evaluator(
        env, policy, sched, episodes, max_steps, records.append, policy_uses_cameras=bool(desc.cameras), frames=frames
    )
    ev.run()
    return records


def test_env_exceptions_in_reset_and_step_are_recorded() -> None:
    env = FlakyEnv("reach", DebugEnvConfig(), 1)
    policy = GoalSeekingPolicy(None, env.spec, 1)
    records = run_evaluator(env, policy, plan_episodes(["reach"], 5, 0))
    by_index = {r.episode_index: r for r in records}
    assert sorted(by_index) == [0, 1, 2, 3, 4]
    assert by_index[0].failure_reason == "env_error: reset failed: RuntimeError: reset exploded"
    assert (by_index[0].error, by_index[0].length, by_index[0].success) == (True, 0, False)
    assert by_index[3].failure_reason == "env_error: RuntimeError: step exploded"
    assert (by_index[3].error, by_index[3].length) == (True, 2)
    assert all(by_index[i].success and not by_index[i].error for i in (1, 2, 4))


def test_max_steps_truncation_is_a_failure() -> None:
    summary, records = evaluate_records("zero", "debug/suite", episodes=3, max_steps=7)
    assert len(records) == 6
    assert all((r.success, r.length, r.failure_reason, r.error) == (False, 7, "max_steps", False) for r in records)
    assert summary.config["max_steps"] == 7
    assert summary.overall.mean_length == 7.0


def test_success_on_the_last_allowed_step_counts() -> None:
    _, [free] = evaluate_records(Factory(), "debug/reach", episodes=1)
    n = free.length
    assert free.success and n >= 2
    _, [exact] = evaluate_records(Factory(), "debug/reach", episodes=1, max_steps=n)
    assert (exact.success, exact.length, exact.failure_reason) == (True, n, None)
    _, [short] = evaluate_records(Factory(), "debug/reach", episodes=1, max_steps=n - 1)
    assert (short.success, short.length, short.failure_reason) == (False, n - 1, "max_steps")


def test_default_max_steps_is_the_envs() -> None:
    summary, records = evaluate_records("zero", "debug/reach", episodes=1)
    assert summary.config["max_steps"] == 50
    assert records[0].length == 50


# -- policy errors -------------------------------------------------------------------------------------


class WrongIds(GoalSeekingPolicy):
    def infer(self, observation, env_mask):
        chunk = super().infer(observation, env_mask)
        return ActionChunk(chunk.actions, chunk.env_ids + 1)


class WrongHorizon(GoalSeekingPolicy):
    def infer(self, observation, env_mask):
        n = int(np.sum(env_mask))
        return ActionChunk(np.zeros((n, 3, 2), np.float32), observation.env_ids[env_mask])


class WrongWidth(GoalSeekingPolicy):
    def infer(self, observation, env_mask):
        n = int(np.sum(env_mask))
        return ActionChunk(np.zeros((n, 1, 5), np.float32), observation.env_ids[env_mask])


class RawArray(GoalSeekingPolicy):
    def infer(self, observation, env_mask):
        return np.zeros((int(np.sum(env_mask)), 1, 2), np.float32)


def test_policy_returning_other_env_ids_is_a_policy_error() -> None:
    with pytest.raises(PolicyError) as err:
        evaluate_records(WrongIds, "debug/reach", episodes=2, num_envs=2)
    assert str(err.value) == "policy returned actions for env ids [1, 2], expected exactly the masked ids [0, 1]"


def test_policy_returning_a_wrong_horizon_is_a_policy_error() -> None:
    with pytest.raises(PolicyError) as err:
        evaluate_records(WrongHorizon, "debug/reach", episodes=2, num_envs=2)
    assert "expected shape (2, 1, 2) (envs, action_horizon, action_dim), got (2, 3, 2)" in str(err.value)


def test_policy_returning_a_wrong_action_width_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match=r"expected shape \(1, 1, 2\).*got \(1, 1, 5\)"):
        evaluate_records(WrongWidth, "debug/reach", episodes=1)


def test_policy_returning_a_plain_array_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match="RawArray.infer returned ndarray, expected an arena.ActionChunk"):
        evaluate_records(RawArray, "debug/reach", episodes=1)


def test_policy_is_closed_even_when_it_fails() -> None:
    factory = Factory(WrongIds)
    with pytest.raises(PolicyError):
        evaluate_records(factory, "debug/reach", episodes=1)
    assert factory.policy.closed


# -- desynchronised slots ------------------------------------------------------------------------------


def test_slots_are_queried_only_when_their_own_chunk_ran_out() -> None:
    factory = Factory(GoalSeekingPolicy, action_horizon=4)
    _, records = evaluate_records(factory, "debug/suite", episodes=6, num_envs=3, seed=2)
    lengths = {r.length for r in records}
    assert len(lengths) > 1  # episodes of different lengths: slots restart at different steps
    for r in records:
        # each episode needed exactly one query per 4 executed steps: never an extra one because
        # another slot ran out
        assert r.timings["inferences"] == ceil_div(r.length, 4), r
    masks = factory.policy.masks
    assert sum(int(m.sum()) for m in masks) == sum(ceil_div(r.length, 4) for r in records)
    assert any(0 < m.sum() < 3 for m in masks)  # partial batches did happen


# -- rendering -------------------------------------------------------------------------------------------


def test_policy_without_cameras_causes_no_rendering(debug_envs) -> None:
    evaluate_records("random", "debug/suite", episodes=3, num_envs=2)
    assert len(debug_envs) == 1
    assert debug_envs[0].render_count() == 0


def test_chunked_execution_renders_only_for_queries(debug_envs, monkeypatch) -> None:
    observed = []
    original = DebugVectorEnv.observe
    monkeypatch.setattr(DebugVectorEnv, "observe", lambda self, *a: observed.append(a) or original(self, *a))
    factory = Factory(CameraGoalPolicy, action_horizon=4, execution_horizon=4)
    summary, records = evaluate_records(factory, "debug/suite", episodes=5, num_envs=3, seed=1)
    # every chunked query is foreseen: images come with the reset or step before it, never from
    # an extra observe() round trip
    assert observed == []
    assert summary.config["scheduler_config"]["execution_horizon"] == 4
    steps = sum(r.length for r in records)
    resets = len(records)
    renders = debug_envs[0].render_count()
    assert 0 < renders <= steps / 4 + resets
    policy = factory.policy
    assert policy.checked == sum(ceil_div(r.length, 4) for r in records)
    assert policy.stale == []


@pytest.mark.parametrize(
    "scheduler, horizon, execution",
    [("chunked", 4, 2), ("passthrough", 3, None), ("ensemble", 3, None), ("synced", 3, None)],
)
def test_images_the_policy_reads_show_the_current_state(scheduler: str, horizon: int, execution: int | None) -> None:
    factory = Factory(CameraGoalPolicy, action_horizon=horizon, execution_horizon=execution)
    _, records = evaluate_records(factory, "debug/suite", episodes=4, num_envs=3, scheduler=scheduler, seed=5)
    assert len(records) == 8
    assert factory.policy.checked > 0
    assert factory.policy.stale == []


def test_synced_restarts_fetch_fresh_images_with_observe(monkeypatch) -> None:
    calls = []
    original = DebugVectorEnv.observe

    def observe(self, env_ids, render):
        calls.append(list(env_ids))
        return original(self, env_ids, render)

    monkeypatch.setattr(DebugVectorEnv, "observe", observe)
    factory = Factory(CameraGoalPolicy, action_horizon=4)
    evaluate_records(factory, "debug/suite", episodes=4, num_envs=2, scheduler="synced", seed=0)
    # a slot waited (holding, not rendered) while the other one's episode ended mid-chunk: the
    # query that followed was not foreseen when stepping, so its images came from observe()
    assert calls
    assert factory.policy.stale == []


def test_the_image_check_detects_stale_frames() -> None:
    # guards the tests above: a camera policy that gets no rendering sees stale (blank) images
    env = DebugVectorEnv("reach", DebugEnvConfig(), 2)
    policy = CameraGoalPolicy(GoalConfig(action_horizon=2), env.spec, 2)
    desc_cameras = policy.describe().cameras
    policy.describe = lambda: GoalSeekingPolicy.describe(policy)  # pretend it uses no camera
    run_evaluator(env, policy, plan_episodes(["reach"], 2, 0))
    assert desc_cameras == {"top": None}
    assert policy.checked > 0 and len(policy.stale) == policy.checked
    assert env.render_count() == 0


class Recorder(FrameSink):
    def __init__(self, wanted: set[int]) -> None:
        self.wanted = wanted
        self.frames: dict[int, int] = Counter()
        self.bad = 0
        self.ended: list[int] = []

    def wants(self, episode: EpisodeSpec) -> bool:
        return episode.index in self.wanted

    def frame(self, slot, episode, observation) -> None:
        self.frames[episode.index] += 1
        if not red_block_matches(np.asarray(observation.images["top"][slot]), observation.state["position"][slot]):
            self.bad += 1

    def end(self, slot, episode, record) -> None:
        assert record.episode_index == episode.index
        self.ended.append(episode.index)


def test_frame_sink_gets_a_fresh_frame_per_step_of_wanted_episodes() -> None:
    sink = Recorder({1, 2})
    env = DebugVectorEnv("reach", DebugEnvConfig(), 2)
    policy = GoalSeekingPolicy(None, env.spec, 2)  # no camera: only recording renders
    records = run_evaluator(env, policy, plan_episodes(["reach"], 4, 0), frames=sink)
    lengths = {r.episode_index: r.length for r in records}
    assert dict(sink.frames) == {1: lengths[1] + 1, 2: lengths[2] + 1}  # the reset frame and one per step
    assert sorted(sink.ended) == [1, 2]
    assert sink.bad == 0
    assert env.render_count() == lengths[1] + lengths[2] + 2
