"""Pipelined stages: identical outcomes for any stage count, queries really in flight while other
groups step, out-of-order futures, refused configurations, resume across stage counts."""

from __future__ import annotations

import random
import threading
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest
from arena_core_testlib import CameraGoalPolicy, Factory, GoalConfig, GoalSeekingPolicy, evaluate_records, outcomes

import arena
from arena.builtins.debug_env import DebugEnvConfig, DebugVectorEnv
from arena.contract import ActionChunk
from arena.env import StepHandle
from arena.errors import ConfigError
from arena.evaluator import Evaluator, plan_episodes
from arena.plugins import Plugins, load_plugins
from arena.policy import PolicyDescription
from arena.schedulers import ChunkedConfig, ChunkedScheduler


@pytest.mark.parametrize("num_envs", [3, 4, 6])
@pytest.mark.parametrize("horizon, execution", [(1, None), (4, 4), (4, 2)])
def test_every_stage_count_gives_the_same_episodes(num_envs: int, horizon: int, execution: int | None) -> None:
    base = None
    for stages in (1, 2, 3):
        factory = Factory(action_horizon=horizon, execution_horizon=execution)
        summary, records = evaluate_records(
            factory, "debug/suite", episodes=5, num_envs=num_envs, seed=4, stages=stages
        )
        assert summary.config["stages"] == stages
        assert len(records) == 10
        base = base or outcomes(records)
        assert outcomes(records) == base, f"stages={stages}"


@pytest.mark.parametrize("scheduler", ["chunked", "passthrough", "ensemble"])
def test_images_are_current_with_stages(scheduler: str) -> None:
    factory = Factory(CameraGoalPolicy, action_horizon=3)
    _, records = evaluate_records(factory, "debug/suite", episodes=4, num_envs=4, scheduler=scheduler, stages=2)
    assert len(records) == 8 and factory.policy.checked > 0
    assert factory.policy.stale == []


class LatePolicy(GoalSeekingPolicy):
    """Answers each query from a thread after a random delay, so futures complete out of order.

    It copies the rows it needs in ``submit`` (the contract), then computes on the copy.
    """

    def __init__(self, config, env_spec, num_envs, rng_seed: int = 0) -> None:  # noqa: ANN001
        super().__init__(config, env_spec, num_envs)
        self.rng = random.Random(rng_seed)
        self.submitted = 0

    def submit(self, observation, env_mask) -> Future:  # noqa: ANN001
        self.submitted += 1
        ids = np.flatnonzero(env_mask)
        snapshot = observation.rows(ids)  # read now: other slots' rows change while this is in flight
        snapshot.env_ids = ids
        future: Future = Future()
        delay = self.rng.uniform(0, 0.004)

        def answer() -> None:
            chunk = self.chunk_for(snapshot, np.arange(len(ids)))
            future.set_result(ActionChunk(chunk, ids))

        threading.Timer(delay, answer).start()
        return future


class ThreadedDebugEnv(DebugVectorEnv):
    """A debug env whose chunk steps really run in a background thread (``async_steps``)."""

    async_steps = True

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.rng = random.Random(1)

    def step_async(self, env_ids, actions, counts, render) -> StepHandle:  # noqa: ANN001
        ids = np.asarray(env_ids, np.int64)
        box: dict = {}

        def run() -> None:
            threading.Event().wait(self.rng.uniform(0, 0.003))
            box["result"] = self.step_chunk(ids, actions, counts, render)

        thread = threading.Thread(target=run)
        thread.start()
        return StepHandle(ids, state=(thread, box))

    def step_wait(self, handle: StepHandle) -> object:
        thread, box = handle.state
        thread.join(10)
        return box["result"]


def run_loop(env, policy, plan, stages: int, horizon: int) -> list:  # noqa: ANN001
    records = []
    sched = ChunkedScheduler(ChunkedConfig(), env.num_envs, env.spec.action_dim, horizon)
    Evaluator(env, policy, sched, plan, env.spec.max_episode_steps, records.append, False, stages=stages).run()
    return records


@pytest.mark.parametrize("seed", range(4))
def test_out_of_order_futures_and_async_steps_keep_exact_accounting(seed: int) -> None:
    plan = plan_episodes(["reach", "reach-far"], 6, seed)
    ref_env = DebugVectorEnv("suite", DebugEnvConfig(), 1)
    reference = outcomes(
        run_loop(ref_env, GoalSeekingPolicy(GoalConfig(action_horizon=3), ref_env.spec, 1), plan, 1, 3)
    )
    for num_envs, stages in ((4, 2), (5, 3), (6, 6)):
        env = ThreadedDebugEnv("suite", DebugEnvConfig(), num_envs)
        policy = LatePolicy(GoalConfig(action_horizon=3), env.spec, num_envs, rng_seed=seed)
        records = run_loop(env, policy, plan, stages, 3)
        assert outcomes(records) == reference, (num_envs, stages)
        assert len(records) == len(plan)


class GatedPolicy(GoalSeekingPolicy):
    """A query of group 0 answers only once the env stepped a slot of group 1 (a serial loop would hang)."""

    def __init__(self, config, env_spec, num_envs, stepped: threading.Event) -> None:  # noqa: ANN001
        super().__init__(config, env_spec, num_envs)
        self.stepped = stepped
        self.waited = 0

    def submit(self, observation, env_mask) -> Future:  # noqa: ANN001
        ids = np.flatnonzero(env_mask)
        chunk = ActionChunk(self.chunk_for(observation, ids), ids)
        future: Future = Future()
        if ids.max() < self.num_envs // 2 and not self.stepped.is_set():
            self.waited += 1

            def answer() -> None:
                if self.stepped.wait(10):
                    future.set_result(chunk)
                else:
                    future.set_exception(TimeoutError("group 1 never stepped while group 0's query was in flight"))

            threading.Thread(target=answer, daemon=True).start()
        else:
            future.set_result(chunk)
        return future


def test_other_groups_step_while_a_query_is_in_flight() -> None:
    stepped = threading.Event()

    class Env(DebugVectorEnv):
        def step(self, env_ids, actions, render):  # noqa: ANN001, ANN202
            if max(env_ids) >= self.num_envs // 2:
                stepped.set()
            return super().step(env_ids, actions, render)

    env = Env("reach", DebugEnvConfig(), 4)
    policy = GatedPolicy(GoalConfig(action_horizon=2), env.spec, 4, stepped)
    records = run_loop(env, policy, plan_episodes(["reach"], 4, 0), stages=2, horizon=2)
    assert len(records) == 4 and policy.waited >= 1


def test_synced_scheduler_refuses_several_stages() -> None:
    with pytest.raises(ConfigError, match=r"--stages 2: the SyncedBatchScheduler couples all slots"):
        evaluate_records(Factory(action_horizon=2), "debug/reach", episodes=2, num_envs=2, scheduler="synced", stages=2)


@pytest.mark.parametrize("stages, message", [(3, r"at most --num-envs \(2\)"), (0, "integer >= 1"), (True, ">= 1")])
def test_bad_stage_counts_name_the_flag(stages: object, message: str) -> None:
    with pytest.raises(ConfigError, match=f"--stages: expected .*{message}"):
        evaluate_records(Factory(), "debug/reach", episodes=2, num_envs=2, stages=stages)


class RemoteLike(GoalSeekingPolicy):
    def describe(self) -> PolicyDescription:
        desc = super().describe()
        desc.stages = 2
        return desc


@pytest.mark.parametrize("cls, num_envs, expected", [(GoalSeekingPolicy, 4, 1), (RemoteLike, 4, 2), (RemoteLike, 1, 1)])
def test_default_stages_follow_the_policy(cls: type, num_envs: int, expected: int) -> None:
    summary, _ = evaluate_records(Factory(cls), "debug/reach", episodes=2, num_envs=num_envs)
    assert summary.config["stages"] == expected


class Ends(GoalSeekingPolicy):
    def __init__(self, *a, **k) -> None:  # noqa: ANN002, ANN003
        super().__init__(*a, **k)
        self.ended: list[tuple[int, str, int]] = []

    def episode_end(self, env_ids, records) -> None:  # noqa: ANN001
        self.ended += [(int(i), r.task, r.episode_index) for i, r in zip(env_ids, records)]


def test_episode_end_reaches_the_policy_once_per_recorded_episode() -> None:
    factory = Factory(Ends, action_horizon=2)
    _, records = evaluate_records(factory, "debug/suite", episodes=3, num_envs=3, stages=3)
    assert sorted(factory.policy.ended) == sorted((r.env_slot, r.task, r.episode_index) for r in records)


def test_a_run_started_with_one_stage_resumes_with_two(tmp_path: Path) -> None:
    out = tmp_path / "run"
    seen = []

    def stop_after_three(record, done, total) -> None:  # noqa: ANN001
        seen.append(record)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        arena.evaluate(Factory(action_horizon=2), "debug/suite", episodes=4, num_envs=4, stages=1, output=out,
                       on_episode=stop_after_three)  # fmt: skip
    summary = arena.evaluate(Factory(action_horizon=2), "debug/suite", episodes=4, num_envs=4, stages=2, resume=out)
    _, fresh = evaluate_records(Factory(action_horizon=2), "debug/suite", episodes=4, num_envs=1)
    from arena_core_testlib import read_records

    assert outcomes(read_records(out)) == outcomes(fresh)
    assert summary.overall.episodes == 8


def test_plugins_are_current_only_during_the_run() -> None:
    import arena.plugins as plugins_module

    seen: list[Plugins] = []

    class Peek(GoalSeekingPolicy):
        def infer(self, observation, env_mask):  # noqa: ANN001, ANN202
            seen.append(plugins_module._current.get())
            return super().infer(observation, env_mask)

    mine = load_plugins()
    evaluate_records(Peek, "debug/reach", episodes=1, plugins=mine)
    assert seen and all(p is mine for p in seen)
    assert plugins_module._current.get() is None  # nothing outlives the run
