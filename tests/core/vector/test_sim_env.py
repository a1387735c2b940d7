"""SimVectorEnv over the debug PointSimulator, in process and in worker processes: identical outcomes,
chunk steps in one call, shared-memory observations, lost workers re-run with their seeds."""

from __future__ import annotations

import functools
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from arena_core_testlib import CameraGoalPolicy, Factory, GoalSeekingPolicy, evaluate_records, outcomes, plan_to_goal

from arena.builtins.debug_env import DebugEnvConfig, DebugEnvFamily, build_spec
from arena.builtins.debug_sim import PointSimulator
from arena.env import EpisodeSpec
from arena.vector import SimVectorEnv


def make(num_envs: int, slots: str, **config) -> SimVectorEnv:  # noqa: ANN003
    env = DebugEnvFamily().make("suite", DebugEnvConfig(slots=slots, **config), num_envs)
    assert isinstance(env, SimVectorEnv)
    return env


@pytest.mark.parametrize("slots", ["inprocess", "processes"])
@pytest.mark.parametrize("stages", [1, 2])
def test_simulator_slots_give_the_array_envs_outcomes(slots: str, stages: int) -> None:
    kw = dict(episodes=4, num_envs=3, seed=2, stages=stages)
    factory = Factory(CameraGoalPolicy, action_horizon=4, execution_horizon=3)
    _, ref = evaluate_records(Factory(CameraGoalPolicy, action_horizon=4, execution_horizon=3), "debug/suite", **kw)
    _, got = evaluate_records(factory, "debug/suite", env_config={"slots": slots}, **kw)
    assert outcomes(got) == outcomes(ref)
    assert factory.policy.checked > 0 and factory.policy.stale == []  # images arrive through shared memory


def test_a_chunk_runs_in_one_call_and_stops_at_success() -> None:
    env = make(2, "inprocess")
    try:
        eps = [EpisodeSpec("reach", 0, 1), EpisodeSpec("reach", 1, 2)]
        obs = env.reset([0, 1], eps, np.zeros(2, bool)).observation
        pos, goal = np.array(obs.state["position"]), np.array(obs.state["goal"])
        actions = np.stack([plan_to_goal(pos[i], goal[i], 8) for i in range(2)])
        actions[1] = 0.0  # slot 1 stands still: it runs every action
        res = env.step_chunk([0, 1], actions, np.array([8, 5]), np.array([True, True]))
        assert res.success.tolist() == [True, False]
        assert res.steps[1] == 5 and 1 <= res.steps[0] < 8
        assert env.render_count() == 1  # only the slot that did not end rendered, once, after its last action
        assert res.lost is None and res.error == [None, None]
    finally:
        env.close()


def test_worker_errors_are_env_errors_not_losses() -> None:
    _, records = evaluate_records(
        GoalSeekingPolicy,
        "debug/suite",
        episodes=3,
        num_envs=2,
        env_config={"slots": "processes", "crash_episodes": (1,)},
    )
    crashed = [r for r in records if r.episode_index == 1]
    assert len(crashed) == 2 and all(r.error and "crashed on purpose" in r.failure_reason for r in crashed)
    assert all("attempts" not in r.timings for r in records)


class Killer(GoalSeekingPolicy):
    """SIGKILLs the worker of slot 1 at its ``at``-th query, ``times`` times in all."""

    env: SimVectorEnv | None = None

    def __init__(self, config, env_spec, num_envs, at: int = 4, times: int = 1) -> None:  # noqa: ANN001
        super().__init__(config, env_spec, num_envs)
        self.at, self.times, self.queries, self.kills = at, times, 0, 0

    def infer(self, observation, env_mask):  # noqa: ANN001, ANN202
        if env_mask[1]:
            self.queries += 1
            if self.kills < self.times and self.queries % self.at == 0:
                os.kill(self.env.worker_pid(1), signal.SIGKILL)
                self.kills += 1
        return super().infer(observation, env_mask)


def run_with_worker_fault(cls: type, retries: int = 2, **attributes: object) -> tuple:
    """debug/suite on 2 worker processes with a ``cls`` policy that reaches the env (to hurt a worker)."""
    import arena.builtins.debug_env as debug_env

    made = []
    original = debug_env.DebugEnvFamily.make

    def make_and_keep(self, env_id, config, num_envs):  # noqa: ANN001, ANN202
        made.append(original(self, env_id, config, num_envs))
        return made[-1]

    maker = Factory(cls, action_horizon=2)

    def factory(spec, n):  # noqa: ANN001, ANN202
        policy = maker(spec, n)
        policy.env = made[-1]
        for name, value in attributes.items():
            setattr(policy, name, value)
        return policy

    debug_env.DebugEnvFamily.make = make_and_keep
    try:
        summary, records = evaluate_records(
            factory, "debug/suite", episodes=4, num_envs=2, env_config={"slots": "processes"}, episode_retries=retries
        )
    finally:
        debug_env.DebugEnvFamily.make = original
    return summary, records, maker.policy


def run_with_killer(times: int, retries: int = 2) -> tuple:
    return run_with_worker_fault(Killer, retries, times=times)


def test_a_killed_worker_loses_no_episode_and_counts_none_twice() -> None:
    summary, records, policy = run_with_killer(times=1)
    _, undisturbed = evaluate_records(GoalSeekingPolicy, "debug/suite", episodes=4, num_envs=2)
    assert policy.kills == 1
    assert summary.totals["episodes_lost"] == 1
    assert outcomes(records) == outcomes(undisturbed)  # the lost episode re-ran with its seed
    assert sum(r.timings.get("attempts", 1) for r in records) == len(records) + 1


def test_an_episode_lost_more_often_than_allowed_is_an_error_naming_the_cause() -> None:
    summary, records, policy = run_with_killer(times=50, retries=0)
    lost = [r for r in records if r.failure_reason and r.failure_reason.startswith("lost:")]
    assert lost and all(r.error and "worker died" in r.failure_reason and "SIGKILL" in r.failure_reason for r in lost)
    assert len(records) == 8 and len({(r.task, r.episode_index) for r in records}) == 8


def test_a_hung_worker_is_replaced_and_its_episode_lost() -> None:
    env = make(2, "processes")
    try:
        env.reset([0, 1], [EpisodeSpec("reach", 0, 1), EpisodeSpec("reach", 1, 2)], np.zeros(2, bool))
        env.runner.timeout_s = 2.0
        victim = env.worker_pid(0)
        os.kill(victim, signal.SIGSTOP)
        try:
            res = env.step([0, 1], np.zeros((2, 2), np.float32), np.zeros(2, bool))
        finally:
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
        assert res.lost is not None and res.lost.tolist() == [True, False]
        assert "timed out" in res.error[0] and res.error[1] is None
        assert env.worker_pid(0) != victim
        assert env.reset([0], [EpisodeSpec("reach", 0, 1)], np.zeros(1, bool)).error == [None]
    finally:
        env.close()


def test_close_stops_workers_and_frees_the_shared_block() -> None:
    env = make(2, "processes")
    name = env.runner.buffers.name
    procs = [w.proc for w in env.runner.workers]
    assert name and Path("/dev/shm", name.lstrip("/")).exists()
    env.close()
    assert not any(p.is_alive() for p in procs)
    assert not Path("/dev/shm", name.lstrip("/")).exists()
    env.close()  # idempotent


def test_default_step_chunk_equals_single_steps() -> None:
    from arena.builtins.debug_env import DebugVectorEnv

    a, b = DebugVectorEnv("reach", DebugEnvConfig(), 2), DebugVectorEnv("reach", DebugEnvConfig(), 2)
    eps = [EpisodeSpec("reach", 0, 5), EpisodeSpec("reach", 1, 6)]
    for env in (a, b):
        env.reset([0, 1], eps, np.zeros(2, bool))
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (2, 6, 2)).astype(np.float32)
    res = a.step_chunk([0, 1], actions, np.array([6, 3]), np.ones(2, bool))
    for j in range(6):
        rows = [k for k in range(2) if j < [6, 3][k]]
        b.step(rows, actions[rows, j], np.zeros(len(rows), bool))
    assert np.array_equal(np.asarray(a._pos), np.asarray(b._pos))
    assert res.steps.tolist() == [6, 3] and a.render_count() == 2


@pytest.mark.parametrize("num_envs", [1, 3])
def test_a_camera_policy_on_processes_renders_once_per_chunk(num_envs: int) -> None:
    factory = Factory(CameraGoalPolicy, action_horizon=4, execution_horizon=4)
    summary, records = evaluate_records(
        factory, "debug/suite", episodes=3, num_envs=num_envs, env_config={"slots": "processes"}
    )
    assert factory.policy.stale == []
    assert summary.totals["renders"] <= sum(r.length for r in records) / 4 + len(records)


def test_in_process_variable_keeps_every_slot_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ray shard sets ARENA_SLOT_PROCESSES=0: its family must not start worker processes of its own."""
    from arena.vector import IN_PROCESS_VAR, InProcessSlots, default_processes

    assert default_processes(2) and not default_processes(1)
    monkeypatch.setenv(IN_PROCESS_VAR, "0")
    assert not default_processes(2)
    env = SimVectorEnv(build_spec("reach", DebugEnvConfig()), functools.partial(PointSimulator, DebugEnvConfig()), 2)
    try:
        assert isinstance(env.runner, InProcessSlots)
    finally:
        env.close()


class Stopper(Killer):
    """SIGSTOPs the worker of slot 1 once, mid-episode (alive, silent), with a 2 s worker timeout."""

    stopped: list[int] = []  # pids, SIGKILLed by the test

    def infer(self, observation, env_mask):  # noqa: ANN001, ANN202
        self.env.runner.timeout_s = 2.0
        if env_mask[1]:
            self.queries += 1
            if not self.kills and self.queries == self.at:
                Stopper.stopped.append(self.env.worker_pid(1))
                os.kill(Stopper.stopped[-1], signal.SIGSTOP)
                self.kills += 1
        return GoalSeekingPolicy.infer(self, observation, env_mask)


@pytest.mark.timeout(60)
def test_a_hung_worker_mid_run_is_replaced_and_the_run_goes_on() -> None:
    """The pipelined loop waits on in-flight steps; a silent worker must not make it wait forever."""
    try:
        summary, records, policy = run_with_worker_fault(Stopper)
    finally:
        for pid in Stopper.stopped:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    _, undisturbed = evaluate_records(GoalSeekingPolicy, "debug/suite", episodes=4, num_envs=2)
    assert policy.kills == 1 and summary.totals["episodes_lost"] == 1
    assert outcomes(records) == outcomes(undisturbed)
