"""Mapping files and the translator, without sockets: schema errors, name resolution against an
env spec, size checks, action coverage, history buffers, reply checks."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from arena.contract import ActionGroup, EnvSpec, Observation, Task
from arena.errors import ConfigError, PolicyError
from arena.plugins import load_plugins
from arena_gr00t import ModalityConfig
from arena_gr00t.mapping import Gr00tMapping, MappingError, load_mapping
from arena_gr00t.serve import LANGUAGE_KEY, modality_config_for
from arena_gr00t.translator import FrameHistory, Translator, keys_are_prefixed

SPEC = EnvSpec(
    name="debug/reach",
    embodiment="point2d",
    cameras={"top": (32, 32)},
    state_groups={"position": ("x", "y"), "goal": ("goal_x", "goal_y")},
    action_groups=(ActionGroup("delta", ("dx", "dy"), low=[-1, -1], high=[1, 1]),),
    tasks=(Task("reach", "move the point to the green goal"),),
    max_episode_steps=50,
)

ARM = EnvSpec(
    name="test/arm",
    embodiment="arm",
    cameras={"wrist": (16, 16), "front": (24, 32)},
    state_groups={"arm": ("j0", "j1", "j2"), "hand": ("grip",), "base": ("x", "y")},
    action_groups=(
        ActionGroup("arm", ("j0", "j1", "j2"), low=[-1] * 3, high=[1] * 3),
        ActionGroup("hand", ("grip",), low=[0], high=[1]),
    ),
    tasks=(Task("t", "do it"),),
    max_episode_steps=10,
)


def mapping(text: str, source: str = "test.toml") -> Gr00tMapping:
    return Gr00tMapping.from_toml(textwrap.dedent(text), source)


POINT2D = load_mapping(load_plugins().translators.get("gr00t:point2d").obj, "gr00t:point2d")


def point2d_config(**overrides: ModalityConfig) -> dict[str, ModalityConfig]:
    config = modality_config_for(SPEC, ["top"], 4)
    config.update(overrides)
    return config


def obs(positions: list[list[float]], n: int | None = None) -> Observation:
    n = n or len(positions)
    pos = np.asarray(positions, np.float32)
    return Observation(
        images={"top": np.zeros((n, 32, 32, 3), np.uint8)},
        state={"position": pos, "goal": pos + 0.5},
        instruction=[f"task {i}" for i in range(n)],
        env_ids=np.arange(n),
    )


# --------------------------------------------------------------------------- schema


def test_packaged_mappings_are_registered_and_parse():
    translators = load_plugins().translators
    for name in ("gr00t:sawyer", "gr00t:point2d"):
        m = load_mapping(translators.get(name).obj, name)
        assert m.embodiment == name.split(":")[1]
        assert m.language_key == LANGUAGE_KEY
    sawyer = load_mapping(translators.get("gr00t:sawyer").obj, "gr00t:sawyer")
    assert set(sawyer.action) == {"ee_delta", "gripper"}
    assert sawyer.state["eef"].joints == ("hand_pos.x", "hand_pos.y", "hand_pos.z", "gripper.opening")
    assert sawyer.video["corner"].size == (224, 224)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("[video.top]\ncam = 'top'\n", "video.top]: unknown field(s) 'cam'; valid: camera, size"),
        ("[video.top]\nsize = [8, 8]\n", "[video.top] needs camera"),
        ("[video.top]\ncamera = 'top'\nsize = [8]\n", "video.top.size must be [HEIGHT, WIDTH]"),
        ("[state.a]\nsize = 2\n", "needs exactly one of groups"),
        ("[state.a]\ngroups = ['x']\njoints = ['x.y']\n", "needs exactly one of groups"),
        ("[state.a]\ngroups = []\n", "state.a.groups must be a non-empty list"),
        ("[action.a]\ngroups = ['d']\nsize = 0\n", "action.a.size must be a positive integer"),
        ("[language]\nkey = ''\n", "language.key must be a non-empty string"),
        ("colour = 'red'\n", "top level: unknown field(s) 'colour'"),
        ("state = 3\n", "state must be a table"),
        ("[video\n", "not valid TOML"),
    ],
)
def test_schema_errors_name_the_entry(text, needle):
    with pytest.raises(MappingError) as err:
        mapping(text, "bad.toml")
    assert "mapping bad.toml" in str(err.value)
    assert needle in str(err.value)
    assert isinstance(err.value, ConfigError)


def test_missing_mapping_file_is_named(tmp_path):
    with pytest.raises(MappingError, match=r"--mapping: cannot read .*nope\.toml"):
        Gr00tMapping.from_file(tmp_path / "nope.toml")


def test_registered_translator_forms(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text("[language]\nkey = 'k'\n")
    as_dict = {"language": {"key": "k"}}
    for obj in (path, str(path), as_dict, lambda: as_dict, mapping("[language]\nkey = 'k'\n")):
        assert load_mapping(obj, "gr00t:x").language_key == "k"
    with pytest.raises(MappingError, match="translator 'gr00t:x' is a int"):
        load_mapping(3, "gr00t:x")


# --------------------------------------------------------------------------- translator


def test_point2d_mapping_fits_the_reference_config():
    t = Translator(point2d_config(), POINT2D, SPEC, 2)
    assert t.problems == []
    assert t.cameras == {"top": None}
    assert t.state_sizes == {"position": 2, "goal": 2}
    assert t.action_horizon == 4 and t.uses_instruction
    assert not keys_are_prefixed(point2d_config())


def test_unmapped_server_keys_are_problems_naming_the_key():
    config = point2d_config(
        state=ModalityConfig([0], ["position", "goal", "velocity"]),
        action=ModalityConfig(range(4), ["delta", "torque"]),
        language=ModalityConfig([0], ["annotation.other"]),
    )
    problems = "\n".join(Translator(config, POINT2D, SPEC, 1).problems)
    assert "state key 'velocity': requested by the server but not in mapping" in problems
    assert "(mapped state keys: position, goal)" in problems
    assert "action key 'torque': returned by the server but not in mapping" in problems
    assert "language key 'annotation.other'" in problems


def test_unknown_camera_and_group_are_named_with_the_valid_ones():
    m = mapping(
        """
        [video.ego]
        camera = "head"
        [state.arm]
        groups = ["arm", "legs"]
        [state.tip]
        joints = ["arm.j9"]
        [state.xy]
        joints = ["x"]
        [action.arm]
        groups = ["arm", "hand"]
        """
    )
    config = {
        "video": ModalityConfig([0], ["ego"]),
        "state": ModalityConfig([0], ["arm", "tip", "xy"]),
        "action": ModalityConfig([0, 1], ["arm"]),
    }
    t = Translator(config, m, ARM, 1)
    problems = "\n".join(t.problems)
    assert (
        "video key 'ego': mapping test.toml reads camera 'head', which env test/arm lacks (env cameras: wrist, front)"
        in problems
    )
    assert (
        "state key 'arm': mapping test.toml reads state group(s) ['legs'], which env test/arm lacks "
        "(env state groups: arm(3)+hand(1)+base(2))" in problems
    )
    assert (
        "reads joint 'arm.j9', an element of no env state group of test/arm (env state elements: arm.j0, arm.j1"
        in problems
    )
    # bare "x" is unique here (base.x); "j0" would be too
    assert "'xy'" not in problems
    assert t.problems and not t.uses_instruction


def test_ambiguous_joint_and_joint_level_routing():
    m = mapping(
        """
        [state.s]
        joints = ["grip", "base.y", "j2"]
        [action.a]
        joints = ["arm.j2", "arm.j0", "arm.j1"]
        [action.h]
        groups = ["hand"]
        """
    )
    config = {"state": ModalityConfig([0], ["s"]), "action": ModalityConfig([0], ["a", "h"])}
    t = Translator(config, m, ARM, 1)
    assert t.problems == []
    o = Observation(
        images={},
        state={
            "arm": np.array([[0.0, 1.0, 2.0]], np.float32),
            "hand": np.array([[3.0]], np.float32),
            "base": np.array([[4.0, 5.0]], np.float32),
        },
        instruction=["do it"],
        env_ids=[0],
    )
    native = t.encode(o, np.array([0]), "nested")
    np.testing.assert_array_equal(native["state"]["s"], [[[3.0, 5.0, 2.0]]])
    actions = t.decode_actions({"a": np.array([[[2.0, 0.0, 1.0]]], np.float32), "h": np.full((1, 1, 1), 9.0)}, 1)
    np.testing.assert_array_equal(actions, [[[0.0, 1.0, 2.0, 9.0]]])
    ambiguous = Translator(
        {"state": ModalityConfig([0], ["s"]), "action": config["action"]},
        mapping("[state.s]\njoints = ['y']\n[action.a]\ngroups = ['arm']\n[action.h]\ngroups = ['hand']\n"),
        EnvSpec(
            name="test/two",
            embodiment="x",
            cameras={},
            state_groups={"p": ("x", "y"), "q": ("y",)},
            action_groups=ARM.action_groups,
            tasks=ARM.tasks,
            max_episode_steps=1,
        ),
        1,
    )
    assert any("joint 'y' is ambiguous (p.y, q.y); write GROUP.ELEMENT" in p for p in ambiguous.problems)


def test_mis_sized_keys_name_expected_and_received_shapes():
    m = mapping(
        """
        [state.position]
        groups = ["position"]
        size = 3
        [state.goal]
        groups = ["goal"]
        [action.delta]
        groups = ["delta"]
        size = 7
        [language]
        key = "annotation.human.task_description"
        """
    )
    config = point2d_config(video=ModalityConfig([0], []), state=ModalityConfig([-1, 0], ["position", "goal"]))
    problems = Translator(config, m, SPEC, 1).problems
    assert any(
        "state key 'position': expected shape (B, 2, 3) (mapping test.toml size 3), "
        "received (B, 2, 2) from env groups position(2)" in p
        for p in problems
    ), problems
    assert any(
        "action key 'delta': expected shape (B, 4, 2) by env groups delta(2), received (B, 4, 7) from the model" in p
        for p in problems
    ), problems


def test_every_env_action_element_must_be_fed_exactly_once():
    config = {"action": ModalityConfig([0], ["arm"])}
    m = mapping("[action.arm]\ngroups = ['arm']\n[action.hand]\ngroups = ['hand']\n")
    problems = Translator(config, m, ARM, 1).problems
    assert any("env action element(s) hand.grip of test/arm are fed by no action key" in p for p in problems)
    twice = mapping("[action.arm]\ngroups = ['arm', 'hand']\n[action.h]\ngroups = ['hand']\n")
    problems = Translator({"action": ModalityConfig([0], ["arm", "h"])}, twice, ARM, 1).problems
    assert any("hand.grip is fed by several action keys: arm, h" in p for p in problems)
    assert any("no action keys" in p for p in Translator({}, twice, ARM, 1).problems)


def test_future_input_frames_are_refused():
    config = point2d_config(state=ModalityConfig([0, 1], ["position", "goal"]))
    assert any("ask for future frames" in p for p in Translator(config, POINT2D, SPEC, 1).problems)


def test_prefixed_keys_mean_flat_form():
    config = {
        "video": ModalityConfig([0], ["video.top"]),
        "state": ModalityConfig([0], ["state.position", "state.goal"]),
        "action": ModalityConfig(range(4), ["action.delta"]),
        "language": ModalityConfig([0], [LANGUAGE_KEY]),
    }
    assert keys_are_prefixed(config)
    t = Translator(config, POINT2D, SPEC, 1)
    assert t.problems == [] and t.prefixed
    flat = t.encode(obs([[0.1, 0.2]]), np.array([0]), "flat")
    assert sorted(flat) == [LANGUAGE_KEY, "state.goal", "state.position", "video.top"]
    assert flat[LANGUAGE_KEY] == ["task 0"]
    reply = {"action.delta": np.ones((1, 4, 2), np.float32)}
    assert t.decode_actions(reply, 1).shape == (1, 4, 2)


def test_reply_errors_name_key_expected_and_received():
    t = Translator(point2d_config(), POINT2D, SPEC, 2)
    with pytest.raises(
        PolicyError, match=r"action key 'delta' missing from the server's reply \(expected shape \(2, 4, 2\)"
    ):
        t.decode_actions({"other": np.zeros((2, 4, 2))}, 2)
    with pytest.raises(
        PolicyError, match=r"expected shape \(2, 4, 2\) \(env groups delta\(2\)\), received \(2, 4, 3\) float32"
    ):
        t.decode_actions({"delta": np.zeros((2, 4, 3), np.float32)}, 2)
    with pytest.raises(PolicyError, match="non-finite"):
        t.decode_actions({"delta": np.full((2, 4, 2), np.nan, np.float32)}, 2)


def test_nested_encoding_and_images_resized_to_the_model_size():
    m = mapping(
        """
        [video.top]
        camera = "top"
        size = [16, 24]
        [state.position]
        groups = ["position"]
        [state.goal]
        groups = ["goal"]
        [action.delta]
        groups = ["delta"]
        [language]
        key = "annotation.human.task_description"
        """
    )
    t = Translator(point2d_config(), m, SPEC, 3)
    o = obs([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
    o.images["top"][:] = 200
    native = t.encode(o, np.array([0, 2]), "nested")
    top = native["video"]["top"]
    assert top.shape == (2, 1, 16, 24, 3) and top.dtype == np.uint8
    assert top[0, 0, 8, 12].tolist() == [200, 200, 200] and top[0, 0, 8, 0].tolist() == [0, 0, 0]  # padded sides
    np.testing.assert_allclose(native["state"]["position"][:, 0], [[0.1, 0.2], [0.5, 0.6]])
    assert native["language"] == {LANGUAGE_KEY: [["task 0"], ["task 2"]]}


def test_history_buffer_follows_delta_indices_with_partial_reset():
    h = FrameHistory(3, [-1, 0])
    ids = np.array([0, 1])
    np.testing.assert_array_equal(h.frames(ids, np.array([[1.0], [10.0]])), [[[1.0], [1.0]], [[10.0], [10.0]]])
    np.testing.assert_array_equal(h.frames(ids, np.array([[2.0], [20.0]])), [[[1.0], [2.0]], [[10.0], [20.0]]])
    h.reset([1])
    np.testing.assert_array_equal(h.frames(ids, np.array([[3.0], [30.0]])), [[[2.0], [3.0]], [[30.0], [30.0]]])
    # a slot queried alone keeps its own history; a longer look-back clamps to the episode start
    deep = FrameHistory(2, [-3, -1, 0])
    deep.frames(np.array([1]), np.array([[5.0]]))
    np.testing.assert_array_equal(deep.frames(np.array([1]), np.array([[6.0]])), [[[5.0], [5.0], [6.0]]])


def test_mapping_flag_takes_a_packaged_name_or_a_path(tmp_path):
    from arena_gr00t.mapping import packaged_mapping
    from arena_gr00t.policy import Gr00tConfig, Gr00tPolicy

    spec = EnvSpec(
        name="t/x",
        embodiment="point2d",
        cameras={},
        state_groups={"position": ("x", "y")},
        action_groups=(ActionGroup("move", ("dx", "dy"), low=[-1, -1], high=[1, 1]),),
        tasks=(Task("x", "go"),),
        max_episode_steps=5,
    )
    by_name = Gr00tPolicy(Gr00tConfig(mapping="sawyer"), spec, 1).mapping()
    assert "sawyer" in by_name.source
    path = tmp_path / "m.toml"
    path.write_text(packaged_mapping("point2d").read_text())
    assert Gr00tPolicy(Gr00tConfig(mapping=str(path)), spec, 1).mapping().source == str(path)
    with pytest.raises(ConfigError, match="neither a packaged mapping"):
        Gr00tPolicy(Gr00tConfig(mapping="nope"), spec, 1).mapping()
