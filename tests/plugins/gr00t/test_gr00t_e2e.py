"""End to end with real processes on 127.0.0.1: `arena-gr00t serve` subprocesses, `arena eval`
(arena.evaluate) and `arena check` (arena.cli.main) in this process, Meta-World's expert."""

from __future__ import annotations

import json
import logging
import threading
import time
from importlib.resources import files

import numpy as np
import pytest
from gr00t_arena_helpers import HERE, ServeProcess, free_port, spawn_serve, start_serve, wait_ready

import arena
from arena.cli import main as arena_main
from arena_gr00t import Gr00tClient, Gr00tServerError
from arena_gr00t.policy import TOKEN_ENV

pytest.importorskip("arena_metaworld")

pytestmark = pytest.mark.timeout(120)

ENV = "metaworld/reach-v3"
TOKEN = "e2e-token"
EXPERT = ("--policy", "expert", "--env", ENV)
FAST_RETRY = {"timeout": 1.0, "retries": 60, "backoff": 0.05, "max_backoff": 0.25}


@pytest.fixture(scope="module")
def servers():
    """Reference servers started side by side (startup dominates these tests)."""
    procs = {
        "nested": spawn_serve(*EXPERT),
        "flat": spawn_serve(*EXPERT, "--use-sim-policy-wrapper"),
        "extra_key": spawn_serve(
            "--policy", "zero", "--env", "debug/reach", "--image-keys", "env", script=HERE / "gr00t_extra_key_serve.py"
        ),
        "small_images": spawn_serve(
            "--policy", "zero", "--env", "debug/reach", "--image-keys", "env", "--image-size", "16"
        ),
        "video": spawn_serve(*EXPERT, "--image-keys", "env", "--cameras", "corner,topview"),
        "secured": spawn_serve(
            "--policy", "zero", "--env", "debug/reach", "--max-message-bytes", "4096", env={TOKEN_ENV: TOKEN}
        ),
    }
    try:
        for sp in procs.values():
            wait_ready(sp)
        yield procs
    finally:
        for sp in procs.values():
            sp.kill()


@pytest.fixture(scope="module")
def expert_outcomes():
    """The in-process expert on the episodes the remote runs use."""
    records: list = []
    arena.evaluate("expert", ENV, episodes=5, write=False, on_episode=lambda r, d, t: records.append(r))
    return outcomes(records)


def outcomes(records: list) -> dict:
    return {(r.task, r.episode_index): (r.success, r.length) for r in records}


def remote(port: int, episodes: int, **config) -> tuple[dict, arena.results.Summary]:
    records: list = []
    summary = arena.evaluate(
        "gr00t",
        ENV,
        episodes=episodes,
        write=False,
        policy_config={"port": port, **config},
        on_episode=lambda r, d, t: records.append(r),
    )
    return outcomes(records), summary


def test_expert_through_the_remote_path_matches_in_process(servers, expert_outcomes):
    got, summary = remote(servers["nested"].port, 3)
    expected = {k: v for k, v in expert_outcomes.items() if k[1] < 3}
    assert got == expected
    assert summary.overall.success_rate == 1.0
    assert summary.config["action_horizon"] == 1


def test_flat_form_server_is_detected_and_matches(servers, expert_outcomes):
    got, summary = remote(servers["flat"].port, 1)
    assert got == {k: v for k, v in expert_outcomes.items() if k[1] < 1}
    assert summary.overall.successes == 1


def test_server_killed_mid_evaluation_and_restarted(tmp_path, expert_outcomes, caplog):
    port = free_port()
    first = start_serve(*EXPERT, port=port)
    later: list[ServeProcess] = []
    restarter: list[threading.Thread] = []

    def restart() -> None:
        time.sleep(1.0)  # longer than --timeout: the client must go through at least one retry
        later.append(start_serve(*EXPERT, port=port))

    def on_episode(record, done: int, total: int) -> None:
        if done == 2 and not restarter:
            first.kill()
            restarter.append(threading.Thread(target=restart, daemon=True))
            restarter[0].start()

    caplog.set_level(logging.WARNING, logger="arena_gr00t.wire.client")
    try:
        summary = arena.evaluate(
            "gr00t",
            ENV,
            episodes=5,
            output=tmp_path / "run",
            policy_config={"port": port, **FAST_RETRY},
            on_episode=on_episode,
        )
    finally:
        for t in restarter:
            t.join(timeout=40)
        first.kill()
        for sp in later:
            sp.kill()
    assert later, "the server was never restarted"
    assert "retrying" in caplog.text  # the evaluation really went through the outage
    lines = (tmp_path / "run" / "episodes.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert sorted(r["episode_index"] for r in records) == [0, 1, 2, 3, 4]
    assert summary.overall.episodes == 5
    assert {("reach-v3", r["episode_index"]): (r["success"], r["length"]) for r in records} == expert_outcomes


def check(capsys, *args: str) -> tuple[int, str]:
    code = arena_main(["check", "--policy", "gr00t", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_check_passes_against_the_reference_server(servers, capsys):
    code, out = check(capsys, "--env", ENV, "--port", str(servers["nested"].port))
    assert code == 0, out
    assert "ok: the policy fits the env" in out and "gr00t:sawyer" in out


def test_check_names_an_extra_server_key(servers, capsys):
    code, out = check(capsys, "--env", "debug/reach", "--port", str(servers["extra_key"].port))
    assert code == 1, out
    assert "state key 'velocity': requested by the server but not in mapping gr00t:point2d" in out
    assert "(mapped state keys: position, goal)" in out


def test_check_names_a_mis_sized_key(servers, capsys):
    code, out = check(capsys, "--env", "debug/reach", "--port", str(servers["small_images"].port))
    assert code == 1, out
    assert "video['top']: expected uint8 (B, 1, 16, 16, 3), received uint8 (1, 1, 32, 32, 3)" in out


def test_check_names_mapping_errors_with_the_valid_names(servers, capsys, tmp_path):
    sawyer = files("arena_gr00t").joinpath("mappings", "sawyer.toml").read_text()
    bad = sawyer.replace('groups = ["goal"]\nsize = 3', 'groups = ["goal"]\nsize = 4').replace(
        'groups = ["hand_pos"]\nsize = 3', 'groups = ["hand"]\nsize = 3'
    )
    assert bad.count("size = 4") == sawyer.count("size = 4") + 1 and '["hand"]' in bad
    (tmp_path / "sawyer.toml").write_text(bad)
    code, out = check(
        capsys, "--env", ENV, "--port", str(servers["nested"].port), "--mapping", str(tmp_path / "sawyer.toml")
    )
    assert code == 1, out
    assert "state key 'goal': expected shape (B, 1, 4)" in out and "received (B, 1, 3) from env groups goal(3)" in out
    assert "reads state group(s) ['hand'], which env metaworld/reach-v3 lacks (env state groups: hand_pos(3)" in out

    point2d = files("arena_gr00t").joinpath("mappings", "point2d.toml").read_text()
    (tmp_path / "p.toml").write_text(point2d.replace('camera = "top"', 'camera = "front"'))
    code, out = check(
        capsys,
        "--env",
        "debug/reach",
        "--port",
        str(servers["small_images"].port),
        "--mapping",
        str(tmp_path / "p.toml"),
    )
    assert code == 1, out
    assert "reads camera 'front', which env debug/reach lacks (env cameras: top)" in out


def test_check_names_an_unreachable_server(capsys):
    port = free_port()
    code, out = check(capsys, "--env", "debug/reach", "--port", str(port))
    assert code == 1, out
    assert f"GR00T server at 127.0.0.1:{port} is not reachable (connection refused)" in out


def test_sawyer_mapping_fits_the_servers_video_keys(servers, capsys):
    code, out = check(capsys, "--env", ENV, "--port", str(servers["video"].port), "--cameras", "corner,topview")
    assert code == 0, out
    assert "corner 224x224, topview 224x224 (T=1)" in out


def test_reference_server_security(servers):
    sp = servers["secured"]
    assert f"on 127.0.0.1:{sp.port}" in sp.log() and "token required, kill allowed" in sp.log()
    with Gr00tClient([("127.0.0.1", sp.port)], timeout_s=20, retries=0) as anonymous:
        with pytest.raises(Gr00tServerError, match="Unauthorized"):
            anonymous.get_modality_config()
        with pytest.raises(Gr00tServerError, match="Unauthorized"):
            anonymous.kill()
    with Gr00tClient([("127.0.0.1", sp.port)], api_token=TOKEN, timeout_s=20, retries=0) as client:
        with pytest.raises(Gr00tServerError, match="Request too large"):
            client.call("ping", {"blob": "x" * 5000})
        with pytest.raises(Gr00tServerError, match=r"missing state\['goal'\]; expected float32 \(B, 1, 2\)"):
            client.get_action(
                {
                    "video": {},
                    "state": {"position": np.zeros((1, 1, 2), np.float32)},
                    "language": {"annotation.human.task_description": [["go"]]},
                }
            )
        assert client.ping()["status"] == "ok"  # still serving
        client.kill()
    assert sp.proc.wait(timeout=30) == 0


def test_mt10_with_two_stages_gives_the_episodes_of_one_stage(tmp_path):
    """`arena eval --policy gr00t --env metaworld/mt10 --stages 2` against `arena-gr00t serve`."""
    sp = spawn_serve("--policy", "expert", "--env", "metaworld/mt10")
    try:
        wait_ready(sp)
        runs = {}
        for stages in (1, 2):
            out = tmp_path / f"stages{stages}"
            argv = ["eval", "--policy", "gr00t", "--env", "metaworld/mt10", "--port", str(sp.port)]
            argv += ["--episodes", "1", "--num-envs", "2", "--max-steps", "60", "--stages", str(stages)]
            assert arena_main([*argv, "--output", str(out), "--no-progress"]) == 0
            lines = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
            runs[stages] = sorted((d["task"], d["episode_index"], d["success"], d["length"]) for d in lines)
            assert json.loads((out / "summary.json").read_text())["config"]["stages"] == stages
    finally:
        sp.kill()
    local: list = []
    arena.evaluate("expert", "metaworld/mt10", episodes=1, max_steps=60, write=False,
                   on_episode=lambda r, d, t: local.append(r))  # fmt: skip
    assert runs[1] == runs[2] == sorted((r.task, r.episode_index, r.success, r.length) for r in local)
    assert len(runs[1]) == 10 and any(ok for _, _, ok, _ in runs[1])


def test_mt10_on_ray_shards_gives_the_one_host_episodes(tmp_path, monkeypatch):
    """`arena eval --policy gr00t --backend ray --workers 2 --stages 2`: the coordinator holds the
    GR00T client and sends one batched query per stage; the shards step Meta-World on a local Ray."""
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # never depend on a token in ~/.ray
    sp = spawn_serve("--policy", "expert", "--env", "metaworld/mt10")
    try:
        wait_ready(sp)
        out = tmp_path / "ray"
        argv = ["eval", "--policy", "gr00t", "--env", "metaworld/mt10", "--port", str(sp.port), "--episodes", "1"]
        argv += ["--max-steps", "60", "--backend", "ray", "--workers", "2", "--stages", "2"]
        assert arena_main([*argv, "--output", str(out), "--no-progress"]) == 0
        lines = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    finally:
        sp.kill()
    local: list = []
    arena.evaluate("expert", "metaworld/mt10", episodes=1, max_steps=60, write=False,
                   on_episode=lambda r, d, t: local.append(r))  # fmt: skip
    got = sorted((d["task"], d["episode_index"], d["success"], d["length"]) for d in lines)
    assert got == sorted((r.task, r.episode_index, r.success, r.length) for r in local)
    assert {d["shard"].split(" on ")[0] for d in lines} == {"ray shard 0", "ray shard 1"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["backend"]["workers"] == 2 and summary["config"]["stages"] == 2
