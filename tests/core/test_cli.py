"""The ``arena`` command through the real argparse front end (``arena.cli.main``) and once as a
real console-script subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from arena_core_testlib import MISSPELLED, eval_argv, policy_plugin_source, read_jsonl

from arena.cli import main

CLI_PLUGIN = '''
import os
import numpy as np
import arena
from arena.contract import ActionChunk
from arena.policy import Policy, PolicyDescription


class WrongCam(Policy):
    """needs a wrist camera and 7 actions"""

    def infer(self, observation, env_mask):
        raise AssertionError("never run: check_compat refuses it")

    def describe(self):
        return PolicyDescription(
            family="wrongcam", cameras={"wrist": (64, 64), "top": (32, 32)}, state={"position": 2}, action_dim=7
        )


class Stopper(Policy):
    """holds still; with ARENA_TEST_INTERRUPT set, a Ctrl-C arrives when the third episode starts"""

    def __init__(self, config, env_spec, num_envs):
        super().__init__(config, env_spec, num_envs)
        self.started = 0

    def reset(self, env_ids, seeds=None):
        self.started += len(env_ids)
        if os.environ.get("ARENA_TEST_INTERRUPT") and self.started == 3:
            raise KeyboardInterrupt

    def infer(self, observation, env_mask):
        ids = np.flatnonzero(env_mask)
        return ActionChunk(np.zeros((len(ids), 1, 2), np.float32), observation.env_ids[ids])


@arena.hookimpl
def arena_register_policies(registry):
    registry.register("wrongcam", WrongCam)
    registry.register("stopper", Stopper)
'''


@pytest.fixture
def cli_plugin(fake_dists, monkeypatch) -> None:
    fake_dists.add("arena-clitest", CLI_PLUGIN, plugin="clitest", version="0.7")
    monkeypatch.setenv("ARENA_PLUGINS", "clitest")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def run_exit(capsys, *argv: str) -> tuple[int, str, str]:
    """For argparse paths that exit (``--help``, invalid arena flags)."""
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


# -- help and flags ------------------------------------------------------------------------------------


def test_family_flags_appear_in_help(capsys) -> None:
    code, out, _ = run_exit(capsys, "eval", "--policy", "random", "--env", "debug/reach", "--help")
    assert code == 0
    for text in (
        "policy 'random' options",
        "--action-horizon",
        "length of each returned chunk",
        "env 'debug' options",
        "--image-size",
        "--crash-episodes",
        "scheduler 'chunked' options",
        "--execution-horizon",
        "--episodes",
        "--resume",
    ):
        assert text in out, text


def test_help_without_selection_has_no_family_flags(capsys) -> None:
    code, out, _ = run_exit(capsys, "eval", "--help")
    assert code == 0
    assert "--episodes" in out and "--action-horizon" not in out and "--image-size" not in out


def test_scheduler_flags_follow_the_selected_scheduler(capsys) -> None:
    code, out, _ = run_exit(capsys, "eval", "--policy", "zero", "--env", "debug/reach", "--scheduler", "ensemble", "-h")
    assert code == 0
    assert "--ensemble-decay" in out and "--execution-horizon" not in out


def test_check_help_has_family_flags(capsys) -> None:
    code, out, _ = run_exit(capsys, "check", "--policy", "random", "--env", "debug/suite", "--help")
    assert code == 0 and "--action-horizon" in out and "--image-size" in out


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--image-size", "3"], "--image-size: expected an integer >= 8, got 3"),
        (["--action-horizon", "x"], "--action-horizon: expected an integer, got 'x'"),
        (["--action-horizon", "0"], "--action-horizon: expected an integer >= 1, got 0"),
        (["--crash-episodes", "1,two"], "--crash-episodes: expected an integer, got 'two'"),
        (
            ["--execution-horizon", "2"],
            "--execution-horizon: expected 1 <= execution_horizon <= action_horizon (1), got 2",
        ),
    ],
)
def test_bad_family_flag_values_name_flag_expected_and_received(capsys, tmp_path, flags, message) -> None:
    rc, out, err = run(
        capsys, "eval", "--policy", "random", "--env", "debug/reach", "--output", str(tmp_path / "r"), *flags
    )
    assert rc == 2
    assert f"arena: error: {message}" in err
    assert not (tmp_path / "r" / "episodes.jsonl").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--episodes", "0"], "argument --episodes: expected an integer >= 1, got 0"),
        (["--episodes", "many"], "argument --episodes: expected an integer >= 1, got 'many'"),
        (["--num-envs", "0"], "argument --num-envs: expected an integer >= 1, got 0"),
        (["--seed", "-1"], "argument --seed: expected an integer >= 0, got -1"),
    ],
)
def test_bad_arena_flag_values_name_flag_expected_and_received(capsys, flags, message) -> None:
    code, _, err = run_exit(capsys, "eval", "--policy", "random", "--env", "debug/reach", *flags)
    assert code == 2
    assert message in err


@pytest.mark.parametrize(
    "selection, message",
    [
        (["--policy", "nope", "--env", "debug/reach"], "unknown policy 'nope'; known: random, zero"),
        (
            ["--policy", "random", "--env", "debug/nope"],
            "--env: unknown env id 'debug/nope'; valid ids of family 'debug': debug/reach, debug/suite",
        ),
        (["--policy", "random", "--env", "nope/reach"], "unknown env family 'nope'; known: debug"),
        (
            ["--policy", "random", "--env", "reach"],
            "--env: expected FAMILY/ID (e.g. debug/reach), got 'reach'; env families: debug/...",
        ),
        (
            ["--policy", "random", "--env", "debug/reach", "--scheduler", "nope"],
            "unknown scheduler 'nope'; known: chunked, ensemble, passthrough, synced",
        ),
    ],
)
def test_unknown_names_list_the_known_ones(capsys, selection, message) -> None:
    for command in ("eval", "check"):
        rc, _, err = run(capsys, command, *selection)
        assert rc == 2
        assert f"arena: error: {message}" in err


def test_unknown_name_with_help_still_prints_help(capsys) -> None:
    rc, out, err = run(capsys, "eval", "--policy", "nope", "--env", "debug/reach", "--help")
    assert rc == 2
    assert "--episodes" in out and "unknown policy 'nope'" in err


def test_no_command_prints_help(capsys) -> None:
    rc, out, _ = run(capsys)
    assert rc == 2 and "eval" in out and "check" in out and "plugins" in out


# -- eval ----------------------------------------------------------------------------------------------


def test_eval_writes_the_run_and_prints_json(capsys, tmp_path) -> None:
    out_dir = tmp_path / "run"
    flags = ("--episodes", "2", "--seed", "4", "--json", "--action-horizon", "2", "--execution-horizon", "1")
    rc, out, err = run(capsys, *eval_argv("random", "debug/suite", out_dir, *flags))
    assert rc == 0
    summary = json.loads(out)
    assert summary["overall"]["episodes"] == 4
    assert summary["config"]["seed"] == 4
    assert summary["config"]["policy_config"] == {"action_horizon": 2}
    assert summary["config"]["scheduler_config"]["execution_horizon"] == 1
    assert f"run directory: {out_dir}" in err
    assert len(read_jsonl(out_dir / "episodes.jsonl")) == 4
    assert json.loads((out_dir / "summary.json").read_text()) == summary


def test_eval_prints_a_table(capsys, tmp_path) -> None:
    out_dir = tmp_path / "run"
    rc, out, _ = run(capsys, *eval_argv("zero", "debug/reach", out_dir, "--episodes", "3", "--max-steps", "4"))
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["task", "episodes"]
    assert lines[2].split()[:4] == ["reach", "3", "0", "0.000"]
    assert lines[3].split()[:4] == ["OVERALL", "3", "0", "0.000"]
    assert f"results: {out_dir}" in out


def test_eval_env_flags_reach_the_env(capsys, tmp_path) -> None:
    out_dir = tmp_path / "run"
    rc, _, _ = run(
        capsys,
        *eval_argv("zero", "debug/reach", out_dir, "--episodes", "3", "--max-steps", "5", "--crash-episodes", "0,2"),
    )
    assert rc == 0
    records = {r["episode_index"]: r for r in read_jsonl(out_dir / "episodes.jsonl")}
    assert [records[i]["error"] for i in range(3)] == [True, False, True]


def test_eval_refuses_an_output_holding_episodes(capsys, tmp_path) -> None:
    out_dir = tmp_path / "run"
    args = eval_argv("zero", "debug/reach", out_dir, "--episodes", "2", "--max-steps", "2")
    assert run(capsys, *args)[0] == 0
    rc, _, err = run(capsys, *args)
    assert rc == 2
    assert f"arena: error: --output: {out_dir} already holds episodes; use --resume {out_dir}" in err
    assert len(read_jsonl(out_dir / "episodes.jsonl")) == 2


def test_resume_with_another_seed_is_refused(capsys, tmp_path) -> None:
    out_dir = tmp_path / "run"
    base = ["eval", "--policy", "zero", "--env", "debug/reach", "--episodes", "2", "--max-steps", "2", "--no-progress"]
    assert run(capsys, *base, "--output", str(out_dir))[0] == 0
    rc, _, err = run(capsys, *base, "--resume", str(out_dir), "--seed", "1")
    assert rc == 2
    assert "--resume: the config differs" in err and "seed: stored 0, now 1" in err


def test_interrupt_exits_130_and_resume_completes_the_run(capsys, tmp_path, cli_plugin, monkeypatch) -> None:
    out_dir = tmp_path / "run"
    base = [
        "eval",
        "--policy",
        "stopper",
        "--env",
        "debug/reach",
        "--episodes",
        "4",
        "--max-steps",
        "3",
        "--no-progress",
    ]
    monkeypatch.setenv("ARENA_TEST_INTERRUPT", "1")
    rc, _, err = run(capsys, *base, "--output", str(out_dir))
    assert rc == 130
    assert f"arena: interrupted (continue with --resume {out_dir})" in err
    assert [r["episode_index"] for r in read_jsonl(out_dir / "episodes.jsonl")] == [0, 1]
    monkeypatch.delenv("ARENA_TEST_INTERRUPT")
    rc, out, _ = run(capsys, *base, "--resume", str(out_dir), "--json")
    assert rc == 0
    assert json.loads(out)["overall"]["episodes"] == 4
    assert sorted(r["episode_index"] for r in read_jsonl(out_dir / "episodes.jsonl")) == [0, 1, 2, 3]


# -- plugins -------------------------------------------------------------------------------------------


def test_plugins_table_lists_builtins(capsys) -> None:
    rc, out, _ = run(capsys, "plugins")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split() == ["plugin", "distribution", "hooks", "provides"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert "arena-core 0.1.0" in rows["policies"] and "policy:random, policy:zero" in rows["policies"]
    assert "arena_register_envs" in rows["debug"] and "env family:debug" in rows["debug"]
    assert "scheduler:chunked" in rows["schedulers"]


def test_plugins_json(capsys) -> None:
    rc, out, _ = run(capsys, "plugins", "--json")
    assert rc == 0
    rows = {r["name"]: r for r in json.loads(out)}
    debug = rows["debug"]
    assert (debug["distribution"], debug["version"], debug["builtin"], debug["error"]) == (
        "arena-core",
        "0.1.0",
        True,
        None,
    )
    assert debug["hooks"] == ["arena_register_envs"]
    assert debug["provides"] == ["env family:debug"]
    assert rows["policies"]["provides"] == ["policy:random", "policy:zero"]


def test_plugins_shows_third_party_and_failed_plugins(capsys, fake_dists, monkeypatch) -> None:
    fake_dists.add("arena-clitest", CLI_PLUGIN, plugin="clitest", version="0.7")
    fake_dists.add("arena-broken", "raise ImportError('missing simulator')\n", plugin="broken", version="3.1")
    fake_dists.add("arena-typo", MISSPELLED, plugin="typo", version="0.2")
    monkeypatch.setenv("ARENA_PLUGINS", "clitest,broken,typo")
    rc, out, _ = run(capsys, "plugins")
    assert rc == 0
    assert "arena-clitest 0.7" in out and "policy:stopper, policy:wrongcam" in out
    assert "FAILED broken (arena-broken 3.1): ImportError: missing simulator" in out
    typo = next(line for line in out.splitlines() if line.startswith("FAILED typo"))
    assert "(arena-typo 0.2): invalid hooks:" in typo and "arena_register_policys" in typo
    assert "typo-env" not in out
    rc, out, _ = run(capsys, "plugins", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["broken"]["error"] == "ImportError: missing simulator"
    assert rows["clitest"]["hooks"] == ["arena_register_policies"] and rows["clitest"]["builtin"] is False


def test_plugin_no_name_blocks_a_builtin(capsys) -> None:
    rc, out, _ = run(capsys, "plugins", "--json", "--plugin", "no:debug")
    assert rc == 0
    assert "debug" not in {r["name"] for r in json.loads(out)}
    rc, _, err = run(capsys, "eval", "--policy", "random", "--env", "debug/reach", "--plugin", "no:debug")
    assert rc == 2 and "unknown env family 'debug'; known: none" in err


def test_plugin_option_needs_no_prefix(capsys) -> None:
    rc, _, err = run(capsys, "plugins", "--plugin", "debug")
    assert rc == 2 and "--plugin: expected 'no:NAME' to block a plugin, got 'debug'" in err


def test_duplicate_registration_is_an_error_of_the_command(capsys, fake_dists, monkeypatch) -> None:
    fake_dists.add("arena-twin-a", policy_plugin_source("twin"), plugin="twin-a")
    fake_dists.add("arena-twin-b", policy_plugin_source("twin"), plugin="twin-b")
    monkeypatch.setenv("ARENA_PLUGINS", "twin-a,twin-b")
    rc, _, err = run(capsys, "plugins")
    assert rc == 2 and "arena-twin-a" in err and "arena-twin-b" in err


# -- check ---------------------------------------------------------------------------------------------


def test_check_ok(capsys) -> None:
    rc, out, _ = run(capsys, "check", "--policy", "random", "--env", "debug/reach", "--action-horizon", "4")
    assert rc == 0
    assert out.splitlines()[0] == "env debug/reach (embodiment point2d)  vs  policy random"
    assert "MISMATCH" not in out
    assert "scheduler chunked" in out and "executes 4" in out
    assert out.strip().endswith("ok: the policy fits the env")


def test_check_mismatch_prints_the_table_and_exits_1(capsys, cli_plugin) -> None:
    rc, out, _ = run(capsys, "check", "--policy", "wrongcam", "--env", "debug/reach")
    assert rc == 1
    rows = {line.split("  ")[0]: line for line in out.splitlines()}
    assert "MISMATCH" in rows["camera wrist"] and "missing in env" in rows["camera wrist"]
    assert "MISMATCH" in rows["action dim"] and "width differs" in rows["action dim"]
    assert "2 [delta(2)]" in rows["action dim"] and " 7 " in rows["action dim"]
    assert "MISMATCH" not in rows["camera top"] and "MISMATCH" not in rows["state position"]
    assert "2 mismatch(es): camera wrist: env -, policy 64x64; action dim: env 2 [delta(2)], policy 7" in out


def test_check_reports_an_impossible_execution_horizon(capsys) -> None:
    rc, out, _ = run(capsys, "check", "--policy", "random", "--env", "debug/reach", "--execution-horizon", "3")
    assert rc == 1
    line = next(line for line in out.splitlines() if line.startswith("scheduler chunked"))
    assert "MISMATCH" in line and "--execution-horizon" in line


def test_eval_refuses_what_check_reports(capsys, cli_plugin, tmp_path) -> None:
    rc, _, err = run(capsys, "eval", "--policy", "wrongcam", "--env", "debug/reach", "--output", str(tmp_path / "r"))
    assert rc == 2
    assert "camera wrist: env provides -, policy expects 64x64" in err
    assert "action dim: env provides 2 [delta(2)], policy expects 7" in err


# -- the real console script ------------------------------------------------------------------------------


def arena_script() -> str:
    script = Path(sys.executable).with_name("arena")
    if script.exists():
        return str(script)
    found = shutil.which("arena")
    assert found, "the arena console script is not installed"
    return found


def test_console_script_eval_writes_episodes_and_summary(tmp_path) -> None:
    out_dir = tmp_path / "run"
    proc = subprocess.run(
        [
            arena_script(),
            "eval",
            "--policy",
            "random",
            "--env",
            "debug/reach",
            "--episodes",
            "5",
            "--output",
            str(out_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),  # ARENA_PLUGINS from the autouse fixture: built-ins only
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    records = read_jsonl(out_dir / "episodes.jsonl")
    assert len(records) == 5
    assert sorted(r["episode_index"] for r in records) == [0, 1, 2, 3, 4]
    summary = json.loads((out_dir / "summary.json").read_text())
    assert {"overall", "tasks", "config", "versions"} <= set(summary)
    assert set(summary["overall"]) >= {"episodes", "successes", "success_rate", "ci95", "errors"}
    assert summary["overall"]["episodes"] == 5
    assert set(summary["tasks"]) == {"reach"} and "mean_length" in summary["tasks"]["reach"]
    assert len(summary["overall"]["ci95"]) == 2
    assert "OVERALL" in proc.stdout
    assert not (tmp_path / "runs").exists()  # nothing written outside --output
