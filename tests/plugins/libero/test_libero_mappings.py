"""The GR00T and OpenVLA LIBERO mappings on the real libero spec, unedited: selected by embodiment, no
problems, images as the families' reference LIBERO clients build them, grippers converted to LIBERO's."""

from __future__ import annotations

import numpy as np
from arena_libero.config import LiberoConfig
from arena_libero.vector_env import build_spec
from arena_openvla.mapping import OpenvlaMapping
from arena_openvla.policy import OpenvlaTranslator
from libero_testlib import SUITE

from arena.contract import Observation
from arena_gr00t import ModalityConfig
from arena_gr00t.mapping import Gr00tMapping
from arena_gr00t.translator import Translator as Gr00tTranslator

SPEC = build_spec(SUITE, LiberoConfig())


def observation(n: int = 2) -> Observation:
    rng = np.random.default_rng(0)
    return Observation(
        images={c: rng.integers(0, 255, (n, 256, 256, 3), dtype=np.uint8) for c in SPEC.cameras},
        state={g: rng.standard_normal((n, len(e))).astype(np.float32) for g, e in SPEC.state_groups.items()},
        instruction=[SPEC.tasks[i % len(SPEC.tasks)].instruction for i in range(n)],
        env_ids=np.arange(n),
    )


def published_view(upright: np.ndarray) -> np.ndarray:
    """The reference clients' frame: robosuite's (bottom row first) rotated 180 degrees."""
    robosuite = upright[:, ::-1]
    return robosuite[:, ::-1, ::-1]


def test_gr00t_libero_mapping_sends_the_example_clients_keys_and_converts_the_gripper() -> None:
    mapping = Gr00tMapping.registered(SPEC)  # outside a run: the installed plugins
    assert mapping.source.startswith("gr00t:libero_panda")
    keys = ["x", "y", "z", "roll", "pitch", "yaw", "gripper"]
    modality = {
        "video": ModalityConfig([0], ["video.image", "video.wrist_image"]),
        "state": ModalityConfig([0], [f"state.{k}" for k in keys]),
        "action": ModalityConfig(list(range(16)), [f"action.{k}" for k in keys]),
        "language": ModalityConfig([0], ["annotation.human.action.task_description"]),
    }
    t = Gr00tTranslator(modality, mapping, SPEC, 2)
    assert t.problems == []
    obs = observation()
    sent = t.encode(obs, np.arange(2), "flat")
    np.testing.assert_array_equal(sent["video.image"][:, 0], published_view(obs.images["agentview"]))
    np.testing.assert_array_equal(sent["video.wrist_image"][:, 0], published_view(obs.images["eye_in_hand"]))
    np.testing.assert_array_equal(sent["state.roll"][:, 0, 0], obs.state["eef_axis_angle"][:, 0])
    np.testing.assert_array_equal(sent["state.gripper"][:, 0], obs.state["gripper_qpos"])
    assert sent["annotation.human.action.task_description"] == obs.instruction
    reply = {f"action.{k}": np.zeros((2, 16, 1), np.float32) for k in keys}
    reply["action.gripper"][0] = 1.0  # GR00T's LIBERO data: 1 = close
    out = t.decode_actions(reply, 2)
    assert out.shape == (2, 16, 7)
    assert (out[0, :, 6] == 1.0).all() and (out[1, :, 6] == -1.0).all()  # LIBERO: +1 closes, -1 opens


def test_openvla_libero_mapping_mirrors_the_agent_view_and_converts_the_gripper() -> None:
    mapping = OpenvlaMapping.registered(SPEC)
    assert mapping.source.startswith("openvla:libero_panda") and mapping.unnorm_key == "libero_spatial"
    t = OpenvlaTranslator(mapping, SPEC)
    assert t.problems == []
    obs = observation(1)
    (sent,) = t.encode(obs, [0])
    assert set(sent) == {"image", "instruction"} and sent["image"].shape == (224, 224, 3)
    from arena.images import resize_with_pad

    want = resize_with_pad(np.ascontiguousarray(published_view(obs.images["agentview"])), 224, 224)[0]
    np.testing.assert_array_equal(sent["image"], want)
    reply = np.array([[0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]], np.float32)
    env = t.to_env(reply)
    assert env[0, 6] == -1.0 and env[1, 6] == 1.0  # OpenVLA: 1 = open; LIBERO: -1 opens
    np.testing.assert_allclose(t.to_reply(env), reply)  # a served policy answers in OpenVLA's convention


def test_vlaeval_libero_mapping_sends_vla_evals_own_libero_layout() -> None:
    from arena_vlaeval.mapping import VlaevalMapping, VlaevalTranslator
    from vla_eval.benchmarks.libero.benchmark import LIBEROBenchmark

    mapping = VlaevalMapping.registered(SPEC)
    assert mapping.source.startswith("vlaeval:libero_panda")
    t = VlaevalTranslator(mapping, SPEC)
    assert t.problems == []
    obs = observation(1)
    (sent,) = t.encode(obs, [0])
    assert set(sent) == {"images", "task_description", "states"} and list(sent["images"]) == ["agentview", "wrist"]
    np.testing.assert_array_equal(sent["images"]["agentview"], published_view(obs.images["agentview"])[0])
    np.testing.assert_array_equal(sent["images"]["wrist"], published_view(obs.images["eye_in_hand"])[0])
    assert sent["states"].shape == (8,) and sent["task_description"] == obs.instruction[0]
    # the conventions vla-eval's LIBERO benchmark declares match the env's: nothing to convert
    bench = LIBEROBenchmark.__new__(LIBEROBenchmark)
    bench.send_wrist_image, bench.send_state = True, True
    declared = {
        "action_spec": {k: {"dims": v.dims, "format": v.format} for k, v in bench.get_action_spec().items()},
        "observation_spec": {k: {"dims": v.dims, "format": v.format} for k, v in bench.get_observation_spec().items()},
    }
    problems, info = t.check_conventions(declared)
    assert problems == [] and "gripper=binary_close_positive" in info["conventions"]
