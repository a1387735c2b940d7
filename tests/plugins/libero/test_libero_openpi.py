"""The shipped openpi LIBERO mapping against libero/*, unedited: what openpi's own WebsocketPolicyServer
receives is what pi0/pi0.5's LIBERO configs read, as openpi's reference LIBERO client builds it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from arena_libero.config import LiberoConfig
from arena_libero.sim import LiberoSim
from arena_libero.tasks import suite, task_names
from libero_testlib import SUITE, TASKS
from served_process import free_port, start

import arena
from arena.env import EpisodeSpec

pytestmark = pytest.mark.timeout(180)

HERE = Path(__file__).resolve().parent


def openpi_client_view(upright: np.ndarray) -> np.ndarray:
    """openpi's examples/libero/main.py: robosuite's frame (bottom row first) rotated 180 degrees, resized."""
    from openpi_client import image_tools

    robosuite = upright[::-1]
    return image_tools.convert_to_uint8(
        image_tools.resize_with_pad(np.ascontiguousarray(robosuite[::-1, ::-1]), 224, 224)
    )


def test_the_openpi_libero_mapping_sends_what_pi05_libero_reads(tmp_path: Path) -> None:
    task = TASKS[0]
    record = tmp_path / "obs"
    record.mkdir()
    port = free_port()
    server = start(
        [sys.executable, str(HERE / "libero_openpi_server_proc.py"), "--port", str(port), "--record", str(record)], port
    )
    try:
        summary = arena.evaluate(
            "openpi", f"libero/{SUITE}/{task}", episodes=1, max_steps=12, write=False,
            policy_config={"host": f"127.0.0.1:{port}"},
        )  # fmt: skip
    finally:
        server.kill()
    assert summary.overall.episodes == 1 and summary.config["action_horizon"] == 10
    assert summary.config["scheduler_config"]["execution_horizon"] == 5  # replan_steps, as openpi's client
    seen = [dict(np.load(p)) for p in sorted(record.glob("obs-*.npz"), key=lambda p: int(p.stem.split("-")[1]))]
    first = seen[1]  # seen[0] is arena's preflight probe; seen[1] the episode's first query
    assert set(first) == {"observation__image", "observation__wrist_image", "observation__state", "prompt"}
    for key in ("observation__image", "observation__wrist_image"):
        assert first[key].dtype == np.uint8 and first[key].shape == (224, 224, 3)
    assert first["observation__state"].dtype == np.float32 and first["observation__state"].shape == (8,)
    language = suite(SUITE).get_task(task_names(SUITE).index(task)).language  # what openpi's client sends
    assert str(first["prompt"]) == language

    # the same initial state, rendered and read here: what openpi's client would have built from it
    sim = LiberoSim(SUITE, LiberoConfig())
    try:
        state = np.zeros(19, np.float32)
        sim.reset(EpisodeSpec(task, 0, 0), state)
        frames = {c: np.zeros((256, 256, 3), np.uint8) for c in ("agentview", "eye_in_hand")}
        sim.render(frames)
        obs = sim.env.env._get_observations()
    finally:
        sim.close()
    quat = obs["robot0_eef_quat"]
    angle = 2 * np.arccos(np.clip(quat[3], -1, 1))
    axis_angle = quat[:3] * angle / np.sqrt(1 - quat[3] ** 2)
    expected_state = np.concatenate([obs["robot0_eef_pos"], axis_angle, obs["robot0_gripper_qpos"]])
    np.testing.assert_allclose(first["observation__state"], expected_state, atol=1e-5)
    for key, cam in (("observation__image", "agentview"), ("observation__wrist_image", "eye_in_hand")):
        want = openpi_client_view(frames[cam]).astype(int)
        assert np.abs(first[key].astype(int) - want).mean() < 2.0  # arena's and PIL's bilinear resize differ a little
        unflipped = openpi_client_view(frames[cam][::-1, ::-1]).astype(int)  # i.e. the upright frame, unmirrored
        assert np.abs(first[key].astype(int) - unflipped).mean() > 10.0
