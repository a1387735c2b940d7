"""Ids, validation, spec and plugin registration of the Meta-World family; the expert's description."""

from __future__ import annotations

import numpy as np
import pytest

from arena.errors import RegistryError
from arena.plugins import load_plugins
from arena_metaworld.config import MetaWorldConfig
from arena_metaworld.expert import ExpertPolicy, expert_class
from arena_metaworld.family import MetaWorldEnvFamily
from arena_metaworld.layout import OBS_DIM, STATE_GROUPS
from arena_metaworld.tasks import instructions, suites, task_names


def test_ids_cover_the_50_tasks_and_both_suites() -> None:
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS, MT10_V3

    ids = MetaWorldEnvFamily().ids()
    assert len(task_names()) == 50
    assert set(ids) == set(ALL_V3_ENVIRONMENTS) | {"mt10", "mt50"}
    assert suites()["mt10"] == tuple(MT10_V3)
    assert suites()["mt50"] == tuple(ALL_V3_ENVIRONMENTS)


def test_unknown_id_lists_valid_ids() -> None:
    with pytest.raises(RegistryError) as err:
        MetaWorldEnvFamily().make("pick-plaice-v3", MetaWorldConfig(), 1)
    text = str(err.value)
    assert "pick-plaice-v3" in text
    assert "metaworld/pick-place-v3" in text and "metaworld/mt10" in text and "metaworld/mt50" in text


def test_instructions_cover_every_task_once() -> None:
    text = instructions()
    assert set(text) == set(task_names())
    assert len(set(text.values())) == len(text)
    assert all(t.strip() == t and t for t in text.values())


def test_state_layout_is_39_named_elements() -> None:
    assert sum(len(e) for e in STATE_GROUPS.values()) == OBS_DIM
    assert list(STATE_GROUPS)[:6] == ["hand_pos", "gripper", "obj1_pos", "obj1_quat", "obj2_pos", "obj2_quat"]
    assert STATE_GROUPS["hand_pos"] == ("x", "y", "z")
    assert STATE_GROUPS["gripper"] == ("opening",)
    assert STATE_GROUPS["prev_obj2_quat"] == ("q0", "q1", "q2", "q3")
    assert list(STATE_GROUPS)[-1] == "goal"


def test_spec(single) -> None:  # noqa: ANN001
    spec = single.spec
    assert spec.name == "metaworld/mt10"
    assert spec.embodiment == "sawyer"
    assert [t.name for t in spec.tasks] == list(suites()["mt10"])
    assert spec.max_episode_steps == 500
    assert spec.control_hz == pytest.approx(80.0)
    assert [(g.name, g.elements) for g in spec.action_groups] == [
        ("ee_delta", ("x", "y", "z")),
        ("gripper", ("effort",)),
    ]
    np.testing.assert_array_equal(spec.action_low, -np.ones(4))
    np.testing.assert_array_equal(spec.action_high, np.ones(4))
    assert dict(spec.cameras) == {"corner": (64, 80), "topview": (64, 80)}
    assert dict(spec.state_groups) == STATE_GROUPS
    assert "info['success']" in spec.success_rule


def test_plugin_registers_family_and_expert() -> None:
    plugins = load_plugins()
    assert plugins.envs.get("metaworld").obj.name == "metaworld"
    assert plugins.policies.get("expert").obj is ExpertPolicy


def test_expert_class_mapping_by_name() -> None:
    from metaworld.policies import SawyerPegInsertionSideV3Policy, SawyerPickPlaceV3Policy

    assert expert_class("peg-insert-side-v3") is SawyerPegInsertionSideV3Policy
    assert expert_class("pick-place-v3") is SawyerPickPlaceV3Policy
    assert all(expert_class(t) is not None for t in task_names())
    assert expert_class("no-such-task-v3") is None


def test_expert_describe_reads_state_only(single) -> None:  # noqa: ANN001
    desc = ExpertPolicy(None, single.spec, 1).describe()
    assert desc.family == "expert"
    assert desc.cameras == {}
    assert desc.state == {k: len(v) for k, v in STATE_GROUPS.items()}
    assert desc.action_dim == 4 and desc.action_horizon == 1
    assert desc.problems == []


def test_expert_reports_problems_on_a_foreign_env() -> None:
    from arena.builtins.debug_env import DebugEnvConfig, DebugVectorEnv

    spec = DebugVectorEnv("reach", DebugEnvConfig(), 1).spec
    desc = ExpertPolicy(None, spec, 1).describe()
    assert any("hand_pos" in p for p in desc.problems)
    assert any("action_dim" in p for p in desc.problems)


def test_expert_rejects_an_instruction_of_no_task(single) -> None:  # noqa: ANN001
    import attrs

    from arena.errors import PolicyError

    policy = ExpertPolicy(None, single.spec, 1)
    obs = single.observe([0], np.zeros(1, bool))
    bad = attrs.evolve(obs, instruction=["make coffee"])
    with pytest.raises(PolicyError, match="make coffee"):
        policy.infer(bad, np.ones(1, bool))
