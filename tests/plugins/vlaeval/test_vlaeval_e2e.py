"""``--policy vlaeval`` against vla-eval's own model server, and vla-eval's own client against ``arena-vlaeval serve``.

Real peers on 127.0.0.1: vla-eval 0.8.0's ``PredictModelServer`` hosting Meta-World's scripted
expert (with and without ``chunk_size``), and vla-eval's ``Connection`` + ``SyncEpisodeRunner``
driving arena's server. Outcomes are compared episode by episode with the in-process expert.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from vlaeval_helpers import ThreadServer, arena_serve, metaworld_benchmark, vlaeval_expert

import arena
from arena.cli import main as arena_main
from arena.contract import ActionChunk
from arena.evaluator import plan_episodes

pytestmark = pytest.mark.timeout(240)

ENV = "metaworld/reach-v3"


def outcomes(summary_dir: Path) -> list[tuple]:
    rows = [json.loads(line) for line in (summary_dir / "episodes.jsonl").read_text().splitlines()]
    return sorted((r["task"], r["episode_index"], r["seed"], r["success"], r["length"]) for r in rows)


def expert_run(tmp_path: Path, policy: Any = "expert", **kw: Any) -> list[tuple]:
    out = tmp_path / "in-process"
    arena.evaluate(policy, ENV, episodes=4, num_envs=2, output=out, **kw)
    return outcomes(out)


def repeating_expert(k: int) -> Any:
    """The in-process expert whose action is held for k steps: what a server with chunk_size k answers."""
    from arena.plugins import load_plugins
    from arena_metaworld.expert import ExpertPolicy

    load_plugins()

    class Held(ExpertPolicy):
        def infer(self, observation, env_mask):  # noqa: ANN001, ANN201
            chunk = super().infer(observation, env_mask)
            return ActionChunk(np.repeat(chunk.numpy(), k, axis=1), chunk.env_ids)

        def describe(self):  # noqa: ANN201
            d = super().describe()
            d.action_horizon = d.execution_horizon = k
            return d

    return lambda spec, n: Held(None, spec, n)


@pytest.mark.parametrize(("chunk_size", "flag"), [(None, None), (3, "--chunk-size"), (3, "--reply-chunk")])
def test_expert_behind_vlaevals_own_server_matches_in_process(tmp_path: Path, chunk_size: int | None, flag) -> None:
    """Without chunk_size; with it (the server answers one action per observation from its buffer);
    and with (3, 4) chunks answered whole, executed by arena's scheduler."""
    server = vlaeval_expert(*([flag, str(chunk_size)] if chunk_size else []))
    try:
        out = tmp_path / "remote"
        summary = arena.evaluate(
            "vlaeval", ENV, episodes=4, num_envs=2, output=out, policy_config={"host": f"127.0.0.1:{server.port}"}
        )
    finally:
        server.kill()
    reference = expert_run(tmp_path, repeating_expert(chunk_size) if chunk_size else "expert")
    assert outcomes(out) == reference, server.log()
    assert summary.overall.episodes == 4 and summary.overall.successes == sum(r[3] for r in reference)
    # the server saw one session per slot and an episode_start for every episode (its chunk buffer reset)
    log = server.log()
    assert log.count("EPISODE_START") >= 4 + 1  # + the preflight probe's


def test_a_convention_mismatch_is_refused_and_the_mapping_conversion_fixes_it(tmp_path: Path, capsys) -> None:
    server = vlaeval_expert("--gripper", "negative")
    host = f"127.0.0.1:{server.port}"
    try:
        code = arena_main(["check", "--policy", "vlaeval", "--env", ENV, "--host", host])
        out = capsys.readouterr().out
        assert code == 1
        assert (
            "action 'gripper' -> env group 'gripper': the server declares binary_close_negative, env "
            'metaworld/reach-v3 expects binary_close_positive; convert with [convert] gripper = "flip_sign"' in out
        ), out
        from arena_vlaeval.mapping import packaged_mapping

        fixed = tmp_path / "flipped.toml"
        fixed.write_text(packaged_mapping("metaworld").read_text() + '\n[convert]\ngripper = "flip_sign"\n')
        out_dir = tmp_path / "remote"
        arena.evaluate(
            "vlaeval", ENV, episodes=4, num_envs=2, output=out_dir, policy_config={"host": host, "mapping": str(fixed)}
        )
    finally:
        server.kill()
    assert outcomes(out_dir) == expert_run(tmp_path)


def dropping_server(drop_at: int, drops: int) -> ThreadServer:
    """``arena-vlaeval``'s server closing a session once every ``drop_at`` observations, ``drops`` times."""
    from arena_vlaeval.mapping import VlaevalMapping
    from arena_vlaeval.server import VlaevalServer

    from arena.remote.serving import ServedPolicy

    served = ServedPolicy("expert", ENV, max_batch=8)
    server = VlaevalServer(served, VlaevalMapping.registered(served.spec))
    state = {"seen": 0, "drops": drops}
    original = server._observe

    async def observe(slot: int, payload: dict, in_episode: bool) -> Any:
        state["seen"] += 1
        if state["drops"] and state["seen"] % drop_at == 0:
            state["drops"] -= 1
            raise ConnectionResetError("dropped by the test")  # ends this session's handler: the socket closes
        return await original(slot, payload, in_episode)

    server._observe = observe  # type: ignore[method-assign]
    running = ThreadServer(server)
    running.state = state  # type: ignore[attr-defined]
    return running


def test_a_session_dropping_mid_episode_loses_the_episode_and_it_runs_again_with_its_seed(tmp_path: Path) -> None:
    """vla-eval's client would reconnect and go on in a session that never saw episode_start; arena re-runs."""
    server = dropping_server(drop_at=25, drops=2)  # at most --episode-retries (2) drops can hit one episode
    try:
        out = tmp_path / "remote"
        summary = arena.evaluate(
            "vlaeval", ENV, episodes=4, num_envs=2, output=out, policy_config={"host": f"127.0.0.1:{server.port}"}
        )
    finally:
        server.stop()
    assert server.state["drops"] == 0
    assert summary.totals["episodes_lost"] == 2
    assert outcomes(out) == expert_run(tmp_path)  # each lost episode re-ran from its seed: same outcomes, once each


def test_vlaevals_own_client_and_runner_drive_arena_serve() -> None:
    from vla_eval.connection import Connection
    from vla_eval.runners.sync_runner import SyncEpisodeRunner

    server = arena_serve("--policy", "expert", "--env", ENV)
    episodes = plan_episodes(["reach-v3"], 3, 0)
    bench = metaworld_benchmark(ENV)

    async def run() -> list[dict]:
        results = []
        async with Connection(f"ws://127.0.0.1:{server.port}", timeout=30, max_retries=2) as conn:
            assert conn.server_info["action_spec"]["gripper"]["format"] == "binary_close_positive"
            for ep in episodes:
                task = {"name": ep.task, "index": ep.index, "seed": ep.seed}
                results.append(await SyncEpisodeRunner().run_episode(bench, task, conn, max_steps=500))
        return results

    try:
        results = asyncio.run(run())
    finally:
        bench.cleanup()
        server.kill()
    reference = arena.evaluate("expert", ENV, episodes=3, num_envs=1, write=False)
    assert [r["metrics"]["success"] for r in results].count(True) == reference.overall.successes
    assert all(r["metrics"]["success"] for r in results)


def test_observations_of_concurrent_sessions_share_one_batched_infer(tmp_path: Path) -> None:
    from arena_vlaeval.mapping import VlaevalMapping
    from arena_vlaeval.server import VlaevalServer

    from arena.remote.serving import ServedPolicy

    served = ServedPolicy("expert", ENV, max_batch=8)
    running = ThreadServer(VlaevalServer(served, VlaevalMapping.registered(served.spec), max_wait_s=0.05))
    try:
        out = tmp_path / "remote"
        arena.evaluate(
            "vlaeval", ENV, episodes=4, num_envs=4, output=out, policy_config={"host": f"127.0.0.1:{running.port}"}
        )
    finally:
        running.stop()
    batches = running.server.batches
    assert max(batches) == 4 and sum(batches) > len(batches)  # the four slots' steps answered together
    assert outcomes(out) == expert_run(tmp_path)


def test_as_many_env_slots_as_the_server_has_sessions() -> None:
    """Preflight's greetings and probe release their sessions: --num-envs N fits a server of N."""
    from arena_vlaeval.mapping import VlaevalMapping
    from arena_vlaeval.server import VlaevalServer

    from arena.remote.serving import ServedPolicy

    served = ServedPolicy("expert", ENV, max_batch=2)
    running = ThreadServer(VlaevalServer(served, VlaevalMapping.registered(served.spec)))
    try:
        summary = arena.evaluate(
            "vlaeval", ENV, episodes=2, num_envs=2, write=False, policy_config={"host": f"127.0.0.1:{running.port}"}
        )
    finally:
        running.stop()
    assert summary.overall.episodes == 2 and summary.overall.successes == 2
