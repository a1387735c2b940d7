"""The scripted expert end to end through ``arena eval``: it solves libero_object pick-and-place tasks, the
run records the protocol (step limit, settling steps, options), and without --privileged it refuses to start."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from libero_testlib import SUITE, TASKS

import arena
from arena.errors import ContractError

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("task,num_envs", [(TASKS[0], 2), (TASKS[1], 1)])
def test_the_expert_solves_libero_object_tasks_through_arena_eval(tmp_path, task: str, num_envs: int) -> None:  # noqa: ANN001
    run = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "arena.cli", "eval", "--policy", "libero-expert", "--env", f"libero/{SUITE}/{task}",
        "--privileged", "true", "--cameras", "", "--episodes", "2", "--num-envs", str(num_envs), "--output", str(run),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=280, env={**os.environ, "MUJOCO_GL": "egl"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["overall"]["episodes"] == 2 and summary["overall"]["successes"] == 2
    config = json.loads((run / "config.json").read_text())
    assert config["max_steps"] == 280
    assert config["env_config"]["settle_steps"] == 10 and config["env_config"]["privileged"] is True
    records = [json.loads(line) for line in (run / "episodes.jsonl").read_text().splitlines()]
    assert sorted(r["episode_index"] for r in records) == [0, 1] and all(r["length"] < 280 for r in records)


def test_without_privileged_state_the_expert_names_the_option() -> None:
    with pytest.raises(ContractError, match=r"only with the env option --privileged"):
        arena.evaluate("libero-expert", f"libero/{SUITE}/{TASKS[0]}", episodes=1, write=False)
