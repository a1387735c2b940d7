"""``--resume`` after SIGKILL: real ``arena eval`` processes killed at random points, then resumed.

The final episodes must equal an uninterrupted run's exactly (same indices,
seeds, outcomes and lengths for a deterministic policy), with no duplicate
and no truncated line counted. Two setups: the Meta-World scripted expert on
``metaworld/reach-v3`` with ``--num-envs 2`` (worker processes, the real
thing), and the example third-party ``hello`` policy on ``debug/suite``
(always available, many short episodes). The kill points are drawn from a
seed printed in every failure message (set ``ARENA_KILL_SEED`` to replay).
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import attrs
import pytest

from arena.cli import main

KILL_POINTS = 3


@attrs.define
class Setup:
    name: str
    args: list[str]
    env: dict[str, str]
    total: int  # planned episodes
    kill_range: tuple[int, int]  # kill once this many lines (inclusive range) are written


def _arena_command() -> list[str]:
    script = Path(sys.executable).parent / "arena"
    return [str(script)] if script.exists() else [sys.executable, "-m", "arena.cli"]


def _setup(name: str, hello_site: Path) -> Setup:
    env = dict(os.environ)
    if name == "metaworld":
        if importlib.util.find_spec("arena_metaworld") is None:
            pytest.skip("arena-metaworld is not installed")
        env["ARENA_PLUGINS"] = "metaworld"
        args = ["--policy", "expert", "--env", "metaworld/reach-v3", "--episodes", "10", "--num-envs", "2"]
        return Setup(name, args, env, 10, (1, 6))
    env["ARENA_PLUGINS"] = "hello"
    env["PYTHONPATH"] = os.pathsep.join([str(hello_site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    args = ["--policy", "hello", "--env", "debug/suite", "--episodes", "150", "--num-envs", "3"]
    return Setup(name, args, env, 300, (1, 150))


def _eval(setup: Setup, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_arena_command(), "eval", *setup.args, "--no-progress", *extra],
        env=setup.env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _lines(path: Path) -> list[bytes]:
    """Complete lines of episodes.jsonl (a partial last line is not one)."""
    if not path.exists():
        return []
    data = path.read_bytes()
    return data[: data.rfind(b"\n") + 1].splitlines(keepends=True)


def _outcome(d: dict) -> tuple:
    return (d["task"], d["episode_index"], d["seed"], d["success"], d["length"], d["failure_reason"], d["error"])


def _kill_after(setup: Setup, run: Path, k: int) -> int:
    """Start a run, SIGKILL it once ``k`` episodes are on disk; return how many complete lines it left."""
    proc = subprocess.Popen(
        [*_arena_command(), "eval", *setup.args, "--no-progress", "--output", str(run)],
        env=setup.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        episodes = run / "episodes.jsonl"
        while len(_lines(episodes)) < k:
            if proc.poll() is not None:
                raise AssertionError(
                    f"the run ended (rc {proc.returncode}) before {k} episodes: {proc.stderr.read()!r}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"{k} episodes not written within 180 s")
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        proc.stderr.close()  # type: ignore[union-attr]
        _reap_group(proc.pid)
    return len(_lines(run / "episodes.jsonl"))


def _reap_group(pgid: int) -> None:
    """Env workers notice their parent died and exit; kill what is left of this run's process group."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.mark.timeout(900)
@pytest.mark.parametrize("setup_name", ["metaworld", "hello-debug"])
def test_killed_runs_resume_to_the_uninterrupted_result(setup_name: str, hello_site: Path, tmp_path: Path) -> None:
    setup = _setup(setup_name, hello_site)
    ref_run = tmp_path / "reference"
    out = _eval(setup, "--output", str(ref_run))
    assert out.returncode == 0, out.stderr
    reference = [json.loads(line) for line in _lines(ref_run / "episodes.jsonl")]
    assert len(reference) == setup.total
    expected = sorted(_outcome(d) for d in reference)

    seed = int(os.environ.get("ARENA_KILL_SEED", random.randrange(2**32)))
    points = sorted(random.Random(seed).sample(range(setup.kill_range[0], setup.kill_range[1] + 1), KILL_POINTS))
    where = f"(setup {setup_name}, ARENA_KILL_SEED={seed}, kill points {points})"
    for i, k in enumerate(points):
        run = tmp_path / f"killed-{i}"
        left = _kill_after(setup, run, k)
        assert k <= left < setup.total, f"kill after {k} lines left {left} {where}"
        kept = _lines(run / "episodes.jsonl")
        if i == 1:
            # as a kill in the middle of a write leaves it: half of an episode's line, no newline
            done = {(json.loads(line)["task"], json.loads(line)["episode_index"]) for line in kept}
            pending = next(d for d in reference if (d["task"], d["episode_index"]) not in done)
            text = json.dumps(pending, sort_keys=True)
            with open(run / "episodes.jsonl", "ab") as fh:
                fh.write(text[: len(text) // 2].encode())

        out = _eval(setup, "--resume", str(run))
        assert out.returncode == 0, f"{out.stderr} {where}"
        final = _lines(run / "episodes.jsonl")
        assert final[: len(kept)] == kept, f"episodes recorded before the kill must be kept as they were {where}"
        records = [json.loads(line) for line in final]  # every line is complete JSON: the partial one was cut
        keys = [(d["task"], d["episode_index"]) for d in records]
        assert len(keys) == len(set(keys)) == setup.total, f"duplicates or missing episodes {where}"
        assert sorted(_outcome(d) for d in records) == expected, where
        summary = json.loads((run / "summary.json").read_text())
        assert summary["overall"]["episodes"] == setup.total
        assert summary["overall"]["successes"] == sum(d["success"] for d in reference)


def test_resume_refuses_a_different_config_naming_the_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"

    def arena_eval(episodes: int, *extra: str) -> int:
        return main(
            ["eval", "--policy", "random", "--env", "debug/reach", "--episodes", str(episodes), "--no-progress", *extra]
        )

    assert arena_eval(3, "--output", str(run)) == 0
    before = (run / "episodes.jsonl").read_bytes()
    capsys.readouterr()
    assert arena_eval(4, "--seed", "7", "--resume", str(run)) == 2
    err = capsys.readouterr().err
    assert "the config differs" in err and "episodes: stored 3, now 4" in err and "seed: stored 0, now 7" in err
    assert (run / "episodes.jsonl").read_bytes() == before
    # what does not change outcomes may change
    assert arena_eval(3, "--num-envs", "2", "--videos", "1", "--resume", str(run)) == 0
    assert (run / "episodes.jsonl").read_bytes() == before
