"""The ``openpi`` policy family end to end: arena.evaluate / arena check against servers in
subprocesses on 127.0.0.1 (our OpenpiServer with test policies, and ``arena-openpi serve``)."""

from __future__ import annotations

import json
import pathlib
import threading
from typing import Any

import numpy as np
import pytest
from openpi_test_policies import GoalSeekingPolicy
from openpi_test_servers import ServerFactory, ServerProcess, free_port

import arena
from arena.contract import Observation
from arena.errors import ContractError, PolicyError
from arena.plugins import load_plugins
from arena.run import make_env
from arena_openpi.policy import OpenpiConfig, OpenpiPolicy

pytestmark = pytest.mark.timeout(60)

GOAL = "openpi_test_policies:make_goal_policy"


def config(*servers: ServerProcess, **kwargs: Any) -> dict[str, Any]:
    return {"host": ",".join(f"127.0.0.1:{s.port}" for s in servers), "reconnect_deadline": 10.0, **kwargs}


def records(run_dir: pathlib.Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "episodes.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def replicas(module_servers: ServerFactory) -> list[ServerProcess]:
    """Two replicas of the goal-seeking policy whose replies take a random 0-20 ms (out of order)."""
    return [module_servers.ours(policy=GOAL, policy_args={"jitter_s": 0.02}) for _ in range(2)]


def test_evaluate_through_a_server(replicas: list[ServerProcess], tmp_path: pathlib.Path) -> None:
    summary = arena.evaluate(
        "openpi", "debug/suite", episodes=4, num_envs=2, policy_config=config(replicas[0]), output=tmp_path / "run"
    )
    assert summary.overall.episodes == 8 and summary.overall.successes == 8
    assert summary.config["action_horizon"] == 5 and summary.config["scheduler_config"]["execution_horizon"] == 5
    assert summary.config["policy_config"]["token"] is None


def test_chunk_length_sources(replicas: list[ServerProcess], tmp_path: pathlib.Path) -> None:
    """The probe finds the length; a stated one must agree; without a probe one must be stated."""
    env, _ = make_env(load_plugins(), "debug/reach", None, 1)
    spec = env.spec
    env.close()

    def describe(**kwargs: Any) -> Any:
        with OpenpiPolicy(OpenpiConfig(**config(replicas[0], **kwargs)), spec, 1) as policy:
            return policy.describe()

    def mapping(horizon: int) -> str:
        path = tmp_path / f"h{horizon}.toml"
        path.write_text(
            f'action_horizon = {horizon}\nreplan_steps = 3\nprompt_key = "prompt"\n'
            '[state."observation/state"]\ngroups = ["position", "goal"]\n'
        )
        return str(path)

    ok = describe()
    assert (ok.action_horizon, ok.execution_horizon, ok.problems) == (5, 5, [])
    assert ok.info["action horizon"] == "5 (probe reply)"
    assert describe(probe=False).problems == [
        "action horizon unknown: the server's metadata does not state it, the mapping has no action_horizon, "
        "and --probe is off"
    ]
    stated = describe(probe=False, mapping=mapping(5))
    assert (stated.action_horizon, stated.execution_horizon, stated.problems) == (5, 3, [])
    assert describe(mapping=mapping(4)).problems == [
        "actions: mapping action_horizon says 4 steps per chunk, the server's probe reply has shape (5, 2)"
    ]
    assert describe(replan_steps=6).problems == ["--replan-steps 6 exceeds the chunk length 5"]


def test_each_env_gets_its_own_result(replicas: list[ServerProcess], tmp_path: pathlib.Path) -> None:
    """num_envs 4 over 2 replicas: concurrent requests, replies out of order, rows in slot order."""
    plugins = load_plugins()
    env, _ = make_env(plugins, "debug/reach", None, 4)
    spec = env.spec
    env.close()
    rng = np.random.default_rng(7)
    with OpenpiPolicy(OpenpiConfig(**config(*replicas)), spec, 4) as policy:
        assert policy.describe().problems == []
        for _ in range(10):
            state = {
                "position": rng.uniform(0, 1, (4, 2)).astype(np.float32),
                "goal": rng.uniform(0, 1, (4, 2)).astype(np.float32),
            }
            obs = Observation(
                images={"top": np.zeros((4, 32, 32, 3), np.uint8)},
                state=state,
                instruction=["reach"] * 4,
                env_ids=np.arange(4),
            )
            mask = rng.uniform(size=4) < 0.75
            mask[rng.integers(4)] = True
            chunk = policy.infer(obs, mask)
            rows = np.flatnonzero(mask)
            assert chunk.env_ids.tolist() == rows.tolist()
            for k, r in enumerate(rows):
                expected = GoalSeekingPolicy.plan(np.concatenate([state["position"][r], state["goal"][r]]), 5)
                np.testing.assert_allclose(chunk.actions[k], expected, rtol=1e-6)
    summary = arena.evaluate(
        "openpi", "debug/suite", episodes=6, num_envs=4, policy_config=config(*replicas), output=tmp_path / "run"
    )
    assert summary.overall.episodes == 12 and summary.overall.successes == 12


def test_restart_mid_evaluation_keeps_exact_episode_counts(servers: ServerFactory, tmp_path: pathlib.Path) -> None:
    """SIGKILL the server during arena.evaluate, restart it on the same port: every planned
    episode ends exactly once, none lost or duplicated."""
    port = free_port()
    args = {"policy": GOAL, "policy_args": {"delay_s": 0.01}, "port": port}
    first = servers.ours(**args)
    restarted: list[ServerProcess] = []
    made: list[OpenpiPolicy] = []

    def restart() -> None:
        restarted.append(servers.ours(**args))

    def on_episode(record: Any, done: int, total: int) -> None:
        if done == 3 and not restarted:
            first.kill()
            threading.Timer(0.3, restart).start()

    def factory(spec: Any, n: int) -> OpenpiPolicy:
        made.append(OpenpiPolicy(OpenpiConfig(**config(first)), spec, n))
        return made[0]

    run = tmp_path / "run"
    summary = arena.evaluate(factory, "debug/suite", episodes=6, num_envs=3, output=run, on_episode=on_episode)
    assert summary.overall.episodes == 12 and summary.overall.successes == 12
    lines = records(run)
    assert sorted((r["task"], r["episode_index"]) for r in lines) == [
        (t, i) for t in ("reach", "reach-far") for i in range(6)
    ]
    assert restarted and restarted[0].proc.poll() is None  # the evaluation finished on the new server
    assert made[0].pool is not None and sum(c.num_reconnects for c in made[0].pool.connections) >= 1


def test_server_error_reaches_the_caller_with_its_traceback(servers: ServerFactory, tmp_path: pathlib.Path) -> None:
    failing = servers.ours(policy=GOAL, policy_args={"fail_after": 1}, debug_errors=True)  # probe passes, then raises
    with pytest.raises(PolicyError) as err:
        arena.evaluate("openpi", "debug/reach", episodes=2, policy_config=config(failing), write=False)
    text = str(err.value)
    assert f"openpi server ws://127.0.0.1:{failing.port} failed during inference for env(s) [0]" in text
    assert "Traceback (most recent call last)" in text
    assert "RuntimeError: goal policy failure requested after 1 request(s)" in text
    # without --debug-errors the client gets the one-line message, never the traceback
    quiet = servers.ours(policy=GOAL, policy_args={"fail_after": 1})
    with pytest.raises(PolicyError) as err:
        arena.evaluate("openpi", "debug/reach", episodes=2, policy_config=config(quiet), write=False)
    assert "RuntimeError: goal policy failure requested after 1 request(s)" in str(err.value)
    assert "Traceback" not in str(err.value)
    # Failing on the probe is a preflight problem: the run does not start.
    with pytest.raises(ContractError, match="failed on the probe observation.*RuntimeError: goal policy failure"):
        arena.evaluate("openpi", "debug/reach", episodes=1, policy_config=config(failing), write=False)


def test_arena_check_reports_mismatches(
    module_servers: ServerFactory, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from arena.cli import main

    # the reference server reads a 64x64 image; debug/reach renders (and point2d sends) 32x32
    served = module_servers.arena_serve(
        "--policy", "random", "--env", "debug/reach", "--image-size", "64", "--image-keys", "env"
    )
    check = ["check", "--policy", "openpi", "--env", "debug/reach", "--port", str(served.port)]
    rc = main(check)
    out = capsys.readouterr().out
    assert rc == 1
    assert (
        "observation/image: server (random on debug/reach) expects shape (64, 64, 3), "
        "the mapping sends (32, 32, 3) (camera top)"
    ) in out
    # with the size fixed in a mapping, the same server fits
    mapping = tmp_path / "point2d64.toml"
    mapping.write_text(
        'prompt_key = "prompt"\nreplan_steps = 5\n[images."observation/image"]\ncamera = "top"\n'
        'size = [64, 64]\n[state."observation/state"]\ngroups = ["position", "goal"]\n'
    )
    assert main([*check, "--mapping", str(mapping)]) == 0
    capsys.readouterr()
    # a mapping that does not fit the env: names and sizes
    mapping.write_text('[state."observation/state"]\ngroups = ["position", "goal", "velocity"]\nsize = 6\n')
    assert main([*check, "--mapping", str(mapping)]) == 1
    out = capsys.readouterr().out
    assert "observation/state" in out and "['velocity']" in out and "env state groups: position(2)+goal(2)" in out
    # a server returning 4-wide chunks (the counting policy echoes the state) to a 2-d env: found by the probe
    counting = module_servers.ours()
    assert main(["check", "--policy", "openpi", "--env", "debug/reach", "--port", str(counting.port)]) == 1
    out = capsys.readouterr().out
    assert "probe: reply 'actions': expected shape (H, 2) for action groups delta(2), received (10, 4)" in out
    # nobody listening: the problem names host:port
    port = free_port()
    assert main(["check", "--policy", "openpi", "--env", "debug/reach", "--host", f"127.0.0.1:{port}"]) == 1
    out = capsys.readouterr().out
    assert f"openpi server at 127.0.0.1:{port} is not reachable" in out


def test_api_key(servers: ServerFactory) -> None:
    locked = servers.ours(policy=GOAL, api_key="s3cret")
    summary = arena.evaluate(
        "openpi", "debug/reach", episodes=1, write=False, policy_config=config(locked, token="s3cret")
    )
    assert summary.overall.successes == 1
    with pytest.raises(ContractError, match="HTTP 401: the API key was refused"):
        arena.evaluate("openpi", "debug/reach", episodes=1, write=False, policy_config=config(locked, token="nope"))


def test_expert_behind_the_reference_server_matches_in_process(module_servers: ServerFactory) -> None:
    """arena-openpi serve --policy expert on Meta-World: same outcomes as the expert in process."""
    pytest.importorskip("metaworld")
    served = module_servers.arena_serve("--policy", "expert", "--env", "metaworld/reach-v3")
    outcomes: dict[str, list[tuple[int, bool, int]]] = {"remote": [], "local": []}

    def run(policy: str, key: str, **extra: Any) -> Any:
        def on_episode(record: Any, done: int, total: int) -> None:
            outcomes[key].append((record.episode_index, record.success, record.length))

        return arena.evaluate(
            policy, "metaworld/reach-v3", episodes=3, seed=3, write=False, on_episode=on_episode, **extra
        )

    remote = run("openpi", "remote", policy_config=config(served))
    local = run("expert", "local")
    assert remote.overall.episodes == local.overall.episodes == 3
    assert sorted(outcomes["remote"]) == sorted(outcomes["local"])
    assert local.overall.successes == 3  # the expert solves reach-v3
    assert remote.config["action_horizon"] == 1
