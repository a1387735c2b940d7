"""The libero env family: ids, the spec by name, the published protocol's numbers, options."""

from __future__ import annotations

import numpy as np
import pytest
from arena_libero.config import LiberoConfig
from arena_libero.layout import PRIVILEGED_GROUPS, quat_to_axis_angle
from arena_libero.tasks import MAX_STEPS, SUITES, init_states, instruction, task_names, tasks_of
from arena_libero.vector_env import build_spec

from arena.errors import ConfigError, RegistryError
from arena.plugins import load_plugins


def test_ids_cover_the_five_suites_and_their_tasks() -> None:
    ids = load_plugins().envs.get("libero").obj.ids()
    assert ids[:5] == list(SUITES)
    counts = {s: len(task_names(s)) for s in SUITES}
    assert counts == {"libero_spatial": 10, "libero_object": 10, "libero_goal": 10, "libero_10": 10, "libero_90": 90}
    assert len(ids) == 5 + 130
    assert tasks_of("libero_object/pick_up_the_milk_and_place_it_in_the_basket") == (
        "libero_object",
        ("pick_up_the_milk_and_place_it_in_the_basket",),
    )
    with pytest.raises(RegistryError, match="libero_object has no task 'nope'"):
        tasks_of("libero_object/nope")
    with pytest.raises(RegistryError, match="unknown LIBERO env id 'libero_100'"):
        tasks_of("libero_100")


def test_spec_names_every_camera_state_and_action_element() -> None:
    spec = build_spec("libero_object", LiberoConfig())
    assert spec.name == "libero/libero_object" and spec.embodiment == "libero_panda"
    assert spec.cameras == {"agentview": (256, 256), "eye_in_hand": (256, 256)}
    assert dict(spec.state_groups) == {
        "eef_pos": ("x", "y", "z"),
        "eef_quat": ("qx", "qy", "qz", "qw"),
        "eef_axis_angle": ("ax", "ay", "az"),
        "gripper_qpos": ("left_finger", "right_finger"),
        "joint_pos": ("j0", "j1", "j2", "j3", "j4", "j5", "j6"),
    }
    assert [(g.name, g.elements, g.convention) for g in spec.action_groups] == [
        ("ee_delta_pos", ("x", "y", "z"), "delta_xyz"),
        ("ee_delta_rot", ("rx", "ry", "rz"), "axis_angle"),
        ("gripper", ("close",), "binary_close_positive"),
    ]
    assert spec.action_dim == 7 and spec.control_hz == 20.0
    assert spec.state_conventions["eef_quat"] == "quaternion_xyzw"
    assert len(spec.tasks) == 10 and spec.tasks[0].instruction == "pick up the alphabet soup and place it in the basket"
    assert build_spec("libero_object", LiberoConfig(image_size=128, cameras=("agentview",))).cameras == {
        "agentview": (128, 128)
    }


def test_step_limits_are_the_published_ones_per_suite() -> None:
    assert MAX_STEPS == {
        "libero_spatial": 220,
        "libero_object": 280,
        "libero_goal": 300,
        "libero_10": 520,
        "libero_90": 400,
    }
    for suite in SUITES:
        assert build_spec(suite, LiberoConfig(cameras=())).max_episode_steps == MAX_STEPS[suite]
    one = f"libero_spatial/{task_names('libero_spatial')[0]}"
    assert build_spec(one, LiberoConfig()).max_episode_steps == 220


def test_privileged_groups_exist_only_when_asked_for() -> None:
    assert not set(PRIVILEGED_GROUPS) & set(build_spec("libero_object", LiberoConfig()).state_groups)
    spec = build_spec("libero_object", LiberoConfig(privileged=True))
    assert set(PRIVILEGED_GROUPS) <= set(spec.state_groups)


def test_instructions_from_the_bddl_file_name_or_its_language_field() -> None:
    task = task_names("libero_spatial")[0]
    assert instruction("libero_spatial", task) == (
        "pick up the black bowl between the plate and the ramekin and place it on the plate"
    )
    assert instruction("libero_spatial", task, "bddl") == (
        "pick the akita black bowl between the plate and the ramekin and place it on the plate"
    )
    spec = build_spec("libero_spatial", LiberoConfig(instruction="bddl"))
    assert spec.tasks[0].instruction.startswith("pick the akita black bowl")


def test_init_states_are_the_benchmarks_fixed_ones() -> None:
    states = init_states("libero_object", task_names("libero_object")[0])
    assert states.shape[0] == 50 and states.dtype == np.float64 and not states.flags.writeable


def test_bad_options_name_the_flag() -> None:
    with pytest.raises(ConfigError, match="--cameras: unknown camera"):
        LiberoConfig(cameras=("frontview",))
    with pytest.raises(ConfigError, match="--instruction: expected filename or bddl"):
        LiberoConfig(instruction="json")


def test_axis_angle_of_quaternions() -> None:
    assert np.allclose(quat_to_axis_angle(np.array([0.0, 0.0, 0.0, 1.0])), 0.0)
    half = np.sqrt(0.5)
    assert np.allclose(quat_to_axis_angle(np.array([0.0, 0.0, half, half])), [0.0, 0.0, np.pi / 2])
    assert np.allclose(quat_to_axis_angle(np.array([1.0, 0.0, 0.0, 0.0])), [np.pi, 0.0, 0.0])
