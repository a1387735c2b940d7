"""Mapping files, the translator and the served layout, without any server.

The LIBERO and DROID mappings name env cameras and groups of envs arena does not ship, so
they are checked against synthetic specs shaped like a LIBERO / DROID adapter would be.
"""

from __future__ import annotations

import pathlib

import attrs
import numpy as np
import pytest

from arena.contract import ActionGroup, EnvSpec, Observation, Task
from arena.errors import ContractError, PolicyError
from arena.images import resize_with_pad, rotate180
from arena.plugins import load_plugins
from arena.remote.serving import ServedPolicy
from arena_openpi import decode, encode
from arena_openpi.layout import ServedLayout, build_layout
from arena_openpi.mapping import (
    EMBODIMENT_MAPPINGS,
    PACKAGED_MAPPINGS,
    MappingError,
    OpenpiMapping,
    load_mapping,
    packaged_mapping,
    resolve_mapping,
)
from arena_openpi.serve import ServedOpenpiPolicy
from arena_openpi.translator import Translator

pytestmark = pytest.mark.timeout(30)


def libero_spec(**overrides: object) -> EnvSpec:
    fields = dict(
        name="libero/spatial",
        embodiment="libero_panda",
        cameras={"agentview": (256, 256), "eye_in_hand": (256, 256)},
        state_groups={
            "eef_pos": ("x", "y", "z"),
            "eef_axis_angle": ("ax", "ay", "az"),
            "gripper_qpos": ("left", "right"),
        },
        action_groups=(
            ActionGroup("arm", ("dx", "dy", "dz", "drx", "dry", "drz"), low=[-1] * 6, high=[1] * 6),
            ActionGroup("gripper", ("g",), low=[-1], high=[1]),
        ),
        tasks=(Task("bowl", "pick up the black bowl and place it on the plate"),),
        max_episode_steps=220,
    )
    fields.update(overrides)
    return EnvSpec(**fields)  # type: ignore[arg-type]


def droid_spec() -> EnvSpec:
    return EnvSpec(
        name="droid/kitchen",
        embodiment="franka",
        cameras={"exterior_image_1_left": (180, 320), "wrist_image_left": (180, 320)},
        state_groups={
            "joint_position": tuple(f"j{i}" for i in range(7)),
            "gripper_position": ("g",),
        },
        action_groups=(
            ActionGroup("joint_velocity", tuple(f"v{i}" for i in range(7)), low=[-1] * 7, high=[1] * 7),
            ActionGroup("gripper_position", ("g",), low=[0], high=[1]),
        ),
        tasks=(Task("pot", "put the marker in the pot"),),
        max_episode_steps=300,
    )


def packaged(name: str) -> OpenpiMapping:
    return load_mapping(packaged_mapping(name), name)


def test_packaged_mappings_parse_and_embodiments_are_registered() -> None:
    for name in PACKAGED_MAPPINGS:
        assert packaged(name).name == name
    names = load_plugins().translators.names()
    for embodiment in EMBODIMENT_MAPPINGS:
        assert f"openpi:{embodiment}" in names
    assert resolve_mapping("libero").replan_steps == 5
    assert resolve_mapping("droid").replan_steps == 8


def test_libero_mapping_on_a_libero_like_spec() -> None:
    spec = libero_spec()
    t = Translator(packaged("libero"), spec)
    assert t.problems == []
    assert {k: (v.kind, v.shape) for k, v in t.keys.items()} == {
        "observation/image": ("image", (224, 224, 3)),
        "observation/wrist_image": ("image", (224, 224, 3)),
        "observation/state": ("state", (8,)),
        "prompt": ("prompt", ()),
    }
    assert t.cameras == {"agentview": None, "eye_in_hand": None} and t.uses_instruction
    rng = np.random.default_rng(0)
    n = 3
    obs = Observation(
        images={
            "agentview": rng.integers(0, 255, (n, 256, 256, 3), dtype=np.uint8),
            "eye_in_hand": rng.integers(0, 255, (n, 256, 256, 3), dtype=np.uint8),
        },
        state={g: rng.standard_normal((n, len(e))).astype(np.float32) for g, e in spec.state_groups.items()},
        instruction=["a", "b", "c"],
        env_ids=np.arange(n),
    )
    out = t.encode(obs, [0, 2])
    assert len(out) == 2 and [o["prompt"] for o in out] == ["a", "c"]
    # openpi's client rotates robosuite's bottom-up frames by 180 degrees; on upright frames: a mirror
    robosuite = obs.images["agentview"][[2], ::-1]
    expected = resize_with_pad(rotate180(robosuite), 224, 224)[0]
    np.testing.assert_array_equal(out[1]["observation/image"], expected)  # flip first, then resize with pad
    state = out[1]["observation/state"]
    assert state.dtype == np.float32 and state.shape == (8,)
    np.testing.assert_array_equal(
        state, np.concatenate([obs.state["eef_pos"][2], obs.state["eef_axis_angle"][2], obs.state["gripper_qpos"][2]])
    )
    decoded = decode(encode(out[0]))  # every value travels over msgpack-numpy
    assert decoded["observation/wrist_image"].shape == (224, 224, 3)
    chunk = t.decode([{"actions": np.ones((10, 7))}, {"actions": np.zeros((10, 7), np.float32)}], 10)
    assert chunk.shape == (2, 10, 7) and chunk.dtype == np.float32


def test_droid_mapping_on_a_droid_like_spec() -> None:
    t = Translator(packaged("droid"), droid_spec())
    assert t.problems == []
    assert {k: v.shape for k, v in t.keys.items() if v.kind != "prompt"} == {
        "observation/exterior_image_1_left": (224, 224, 3),  # 180x320 -> 126x224 + padding
        "observation/wrist_image_left": (224, 224, 3),
        "observation/joint_position": (7,),
        "observation/gripper_position": (1,),
    }
    assert t.action_width == 8
    probe = t.probe_observation()
    assert probe["prompt"] == "put the marker in the pot" and probe["observation/gripper_position"].shape == (1,)


def test_mismatches_name_the_key_and_the_shapes() -> None:
    spec = libero_spec(
        cameras={"agentview": (256, 256)},
        state_groups={"eef_pos": ("x", "y", "z"), "eef_axis_angle": ("a", "b", "c"), "gripper_qpos": ("g",)},
    )
    problems = Translator(packaged("libero"), spec).problems
    text = "\n".join(problems)
    assert "observation/wrist_image" in text and "'eye_in_hand'" in text and "env cameras: agentview" in text
    assert (
        "observation/state: mapping libero expects shape (8,), env groups eef_pos(3)+eef_axis_angle(3)+gripper_qpos(1) give (7,)"
        in text
    )
    problems = Translator(packaged("droid"), libero_spec()).problems
    assert any("observation/joint_position" in p and "joint_position" in p for p in problems)


def test_action_groups_reorder_columns_and_bad_replies_are_errors() -> None:
    spec = libero_spec()
    mapping = OpenpiMapping.from_dict({"actions": {"groups": ["gripper", "arm"]}}, "test")
    t = Translator(mapping, spec)
    reply = np.arange(14, dtype=np.float32).reshape(2, 7)  # column 0 is the gripper
    chunk = t.decode([{"actions": reply}], 2)
    np.testing.assert_array_equal(chunk[0, :, 6], reply[:, 0])
    np.testing.assert_array_equal(chunk[0, :, :6], reply[:, 1:])
    with pytest.raises(PolicyError, match=r"expected shape \(H, 7\).*received \(2, 4\)"):
        t.decode([{"actions": np.zeros((2, 4))}], 2)
    with pytest.raises(PolicyError, match=r"expected shape \(3, 7\).*received \(2, 7\)"):
        t.decode([{"actions": reply}], 3)
    with pytest.raises(PolicyError, match="no 'actions' key"):
        t.decode([{"action": reply}], 2)
    bad = Translator(OpenpiMapping.from_dict({"actions": {"groups": ["arm", "base"]}}, "test"), spec)
    assert "names group(s) ['base'] the env lacks and leaves env group(s) ['gripper'] unfed" in bad.problems[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("replan_steps = 0", "replan_steps must be a positive integer"),
        ("colour = 1", r"unknown field\(s\) 'colour'"),
        ('[images."observation/image"]\nsize = [224, 224]', "needs camera"),
        ('[images."observation/image"]\ncamera = "c"\nsize = [224]', r"must be \[HEIGHT, WIDTH\]"),
        ('[state."observation/state"]\ngroups = []', "non-empty list"),
        ('prompt_key = "k"\n[state.k]\ngroups = ["a"]', "fed twice"),
        ("replan_steps = ", "not valid TOML"),
    ],
)
def test_schema_errors(text: str, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        OpenpiMapping.from_toml(text, "bad.toml")


def test_mapping_flag_takes_names_or_paths(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text('name = "mine"\nreplan_steps = 3\n')
    assert resolve_mapping(str(path)).name == "mine"
    with pytest.raises(MappingError, match="neither a packaged mapping"):
        resolve_mapping(str(tmp_path / "missing.toml"))


def wrist_named(mapping: OpenpiMapping) -> OpenpiMapping:
    """The mapping with its wrist image read from a camera named ``wrist`` (served as observation/wrist_image)."""
    images = dict(mapping.images)
    images["observation/wrist_image"] = attrs.evolve(images["observation/wrist_image"], camera="wrist")
    return attrs.evolve(mapping, images=images)


def test_served_layout_round_trip_and_client_check() -> None:
    # renders 256x256; the mapping resizes to 224x224, the size the server takes
    spec = libero_spec(cameras={"agentview": (256, 256), "wrist": (256, 256)})
    layout = build_layout(
        libero_spec(cameras={"agentview": (224, 224), "wrist": (224, 224)}), "expert", ["wrist"], True, 10
    )
    assert list(layout.entries) == [
        "observation/wrist_image",
        "observation/state",
        "prompt",
    ]  # 2nd camera: <name>_image
    back = ServedLayout.from_metadata(decode(encode(layout.to_metadata())))
    assert back == layout
    assert ServedLayout.from_metadata({}) is None
    with pytest.raises(ValueError, match="malformed"):
        ServedLayout.from_metadata({"arena": {"layout_version": 1}})
    t = Translator(wrist_named(packaged("libero")), spec)
    assert t.restrict(layout) == []
    assert t.cameras == {"wrist": None} and t.not_read == ["observation/image"]  # not sent, not rendered
    other = build_layout(
        libero_spec(
            cameras={"agentview": (128, 128), "wrist": (128, 128)},
            state_groups={"gripper_qpos": ("l", "r"), "eef_pos": ("x", "y", "z"), "eef_axis_angle": ("a", "b", "c")},
        ),
        "expert",
        ["agentview"],
        False,
        10,
    )
    problems = Translator(wrist_named(packaged("libero")), spec).restrict(other)
    assert (
        "observation/image: server (expert on libero/spatial) expects shape (128, 128, 3), the mapping sends (224, 224, 3) (camera agentview)"
        in problems
    )
    assert any("splits it into groups ['gripper_qpos', 'eef_pos', 'eef_axis_angle']" in p for p in problems)


def test_served_policy_checks_each_key() -> None:
    served = ServedPolicy("random", "debug/reach", max_batch=1)
    try:
        handler = ServedOpenpiPolicy(served, image_keys="env")
        entries = handler.layout.entries
        assert entries["observation/image"].shape == (32, 32, 3) and entries["observation/state"].groups == (
            "position",
            "goal",
        )
        obs = {
            "observation/image": np.zeros((32, 32, 3), np.uint8),
            "observation/state": np.arange(4, dtype=np.float64),
        }
        canonical = handler.to_canonical(obs)
        np.testing.assert_array_equal(canonical.state["goal"], [[2.0, 3.0]])
        assert handler.infer(obs)["actions"].shape == (1, 2)
        with pytest.raises(ContractError, match=r"missing key 'observation/state'; expected float32 \(4,\)"):
            handler.to_canonical({"observation/image": obs["observation/image"]})
        with pytest.raises(
            ContractError, match=r"observation/image: expected uint8 \(32, 32, 3\), received float32 \(32, 32, 3\)"
        ):
            handler.to_canonical({**obs, "observation/image": np.zeros((32, 32, 3), np.float32)})
        assert "observation/image" not in ServedOpenpiPolicy(served).layout.entries  # random reads no camera
    finally:
        served.close()
