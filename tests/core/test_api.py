"""``arena.evaluate``: policies by name, class or factory; argument validation; what is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from arena_core_testlib import Factory, GoalSeekingPolicy, evaluate_records, outcomes

import arena
from arena.builtins.debug_env import DebugEnvConfig
from arena.builtins.policies import RandomConfig
from arena.errors import ConfigError, ContractError, RegistryError
from arena.policy import PolicyDescription


def test_evaluate_a_policy_family_by_name() -> None:
    summary, records = evaluate_records("random", "debug/suite", episodes=2, policy_config={"action_horizon": 2})
    assert summary.overall.episodes == 4 and len(records) == 4
    assert summary.config["policy"] == "random"
    assert summary.config["policy_config"] == {"action_horizon": 2}
    assert summary.config["action_horizon"] == 2
    # a config instance works like the mapping
    again = evaluate_records("random", "debug/suite", episodes=2, policy_config=RandomConfig(action_horizon=2))[1]
    assert outcomes(again) == outcomes(records)


def test_evaluate_a_policy_subclass() -> None:
    summary, records = evaluate_records(
        GoalSeekingPolicy, "debug/suite", episodes=3, policy_config={"action_horizon": 3}
    )
    assert summary.config["policy"] == "GoalSeekingPolicy"
    assert summary.config["policy_config"] == {"action_horizon": 3, "execution_horizon": None}
    assert summary.overall.successes == 6
    assert all(r.timings["inferences"] == -(-r.length // 3) for r in records)


def test_evaluate_a_factory() -> None:
    factory = Factory(GoalSeekingPolicy, action_horizon=2, execution_horizon=1)
    summary, records = evaluate_records(factory, "debug/reach", episodes=3, num_envs=2)
    assert len(factory.made) == 1
    policy = factory.policy
    assert policy.num_envs == 2 and policy.env_spec.name == "debug/reach"
    assert policy.closed
    assert summary.config["policy"] == "GoalSeekingPolicy" and summary.config["policy_config"] == {
        "action_horizon": 2,
        "execution_horizon": 1,
    }
    assert summary.config["scheduler_config"]["execution_horizon"] == 1  # the policy's suggestion
    assert all(r.timings["inferences"] == r.length for r in records)


@pytest.mark.parametrize(
    "policy, message",
    [
        (lambda spec, n: "not a policy", "policy factory returned str, expected an arena.Policy"),
        (42, "policy: expected a family name, a Policy subclass or a factory, got 42"),
    ],
)
def test_bad_policy_arguments(policy, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        arena.evaluate(policy, "debug/reach", episodes=1, write=False)


def test_bad_policy_config() -> None:
    with pytest.raises(ConfigError, match="unknown option\\(s\\) horizon for RandomConfig; known: action_horizon"):
        arena.evaluate("random", "debug/reach", policy_config={"horizon": 2}, write=False)
    with pytest.raises(ConfigError, match="expected a RandomConfig or a mapping of its fields, got DebugEnvConfig"):
        arena.evaluate("random", "debug/reach", policy_config=DebugEnvConfig(), write=False)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"episodes": 0}, "--episodes: expected an integer >= 1, got 0"),
        ({"episodes": 2.5}, "--episodes: expected an integer >= 1, got 2.5"),
        ({"num_envs": 0}, "--num-envs: expected an integer >= 1, got 0"),
        ({"max_steps": 0}, "--max-steps: expected an integer >= 1, got 0"),
        ({"seed": -1}, "--seed: expected an integer >= 0, got -1"),
        ({"seed": True}, "--seed: expected an integer >= 0, got True"),
        ({"env_config": {"image_size": 3}}, "--image-size: expected an integer >= 8, got 3"),
        ({"scheduler_config": {"execution_horizon": 2}}, "--execution-horizon: expected 1 <= execution_horizon"),
    ],
)
def test_bad_arguments_name_the_flag(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        arena.evaluate("random", "debug/reach", write=False, **kwargs)
    assert message in str(err.value)


def test_unknown_names() -> None:
    with pytest.raises(RegistryError, match="unknown scheduler 'fifo'; known: chunked, ensemble, passthrough, synced"):
        arena.evaluate("random", "debug/reach", scheduler="fifo", write=False)
    with pytest.raises(RegistryError, match="unknown policy 'nope'; known: random, zero"):
        arena.evaluate("nope", "debug/reach", write=False)
    with pytest.raises(RegistryError, match="valid ids of family 'debug': debug/reach, debug/suite"):
        arena.evaluate("random", "debug/far", write=False)


def test_write_false_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    summary = arena.evaluate("random", "debug/reach", episodes=2, write=False)
    assert summary.run_dir is None
    assert list(tmp_path.iterdir()) == []


def test_default_run_directory_is_under_runs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    summary = arena.evaluate("zero", "debug/reach", episodes=2, max_steps=2)
    [run_dir] = list((tmp_path / "runs").iterdir())
    assert run_dir.name.endswith("-zero-debug_reach")
    assert Path(summary.run_dir) == Path("runs") / run_dir.name
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.json", "episodes.jsonl", "summary.json"]


def test_scheduler_and_env_config_by_instance() -> None:
    summary, records = evaluate_records(
        "random",
        "debug/reach",
        episodes=2,
        scheduler="passthrough",
        policy_config={"action_horizon": 3},
        env_config=DebugEnvConfig(image_size=16),
    )
    assert summary.config["scheduler"] == "passthrough"
    assert summary.config["env_config"]["image_size"] == 16
    assert all(r.timings["inferences"] == r.length for r in records)


class Mismatched(GoalSeekingPolicy):
    desc_kwargs: dict = {}

    def describe(self) -> PolicyDescription:
        return PolicyDescription(family="mismatched", **{"action_dim": 2, **self.desc_kwargs})


@pytest.mark.parametrize(
    "desc_kwargs, message",
    [
        ({"action_dim": 3}, "action dim: env provides 2 [delta(2)], policy expects 3"),
        ({"cameras": {"wrist": None}}, "camera wrist: env provides -, policy expects any size"),
        ({"cameras": {"top": (64, 64)}}, "camera top: env provides 32x32, policy expects 64x64"),
        ({"state": {"position": 3}}, "state position: env provides 2, policy expects 3"),
        ({"state": {"velocity": 2}}, "state velocity: env provides -, policy expects 2"),
        ({"problems": ["no key for gripper"]}, "problem: env provides -, policy expects no key for gripper"),
    ],
)
def test_incompatible_policies_are_refused_before_any_episode(desc_kwargs: dict, message: str, tmp_path: Path) -> None:
    Mismatched.desc_kwargs = desc_kwargs
    with pytest.raises(ContractError) as err:
        arena.evaluate(Mismatched, "debug/reach", episodes=1, output=tmp_path / "run")
    assert str(err.value).startswith("policy mismatched does not fit env debug/reach (see `arena check`): ")
    assert str(err.value).endswith(message)
    assert not (tmp_path / "run" / "episodes.jsonl").exists()


def test_summary_is_returned_and_consistent_with_records() -> None:
    summary, records = evaluate_records(
        "random", "debug/suite", episodes=4, seed=2, policy_config={"action_horizon": 2}
    )
    for task, stats in summary.tasks.items():
        mine = [r for r in records if r.task == task]
        assert stats.episodes == len(mine)
        assert stats.successes == sum(r.success for r in mine)
        assert stats.mean_length == pytest.approx(sum(r.length for r in mine) / len(mine))
    assert summary.success_rule.startswith("success when the point is within 0.05 of the goal")
