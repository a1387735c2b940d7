"""The ray backend on a real local Ray (num_cpus=2): same episodes as one host, faults, resume, loopback."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import arena
from arena.backends import BackendConfig
from arena.backends.ray_env import ShardPlacementError
from arena.builtins.policies import RandomPolicy
from arena.errors import ArenaError, ConfigError
from arena.results import RunDir

pytestmark = pytest.mark.timeout(240)

SLOW = {"step_cost_ms": 2.0}  # episodes long enough to be caught mid-run


def outcomes(summary_or_records: Any) -> list[tuple[str, int, int, bool, int]]:
    records = summary_or_records
    return sorted((r.task, r.episode_index, r.seed, r.success, r.length) for r in records)


def run(records: list | None = None, **kw: Any) -> arena.Summary:
    kw.setdefault("episodes", 3)
    kw.setdefault("seed", 5)
    kw.setdefault("write", False)
    sink = records if records is not None else []
    return arena.evaluate("random", "debug/suite", on_episode=lambda r, d, t: sink.append(r), **kw)


def _pid(record: Any) -> int:
    match = re.search(r"pid (\d+)", record.shard or "")
    assert match, record.shard
    return int(match.group(1))


@pytest.fixture(scope="module")
def reference() -> list:
    records: list = []
    run(records, num_envs=2)
    return outcomes(records)


@pytest.mark.parametrize(("workers", "per"), [(1, 1), (2, 1), (2, 2)])
def test_same_episodes_as_one_host(local_ray: Any, reference: list, workers: int, per: int) -> None:
    records: list = []
    summary = run(records, backend="ray", workers=workers, envs_per_worker=per)
    assert outcomes(records) == reference
    assert summary.totals["shards_replaced"] == 0
    assert {r.shard.split(" on ")[0] for r in records} == {f"ray shard {i}" for i in range(workers)}
    assert summary.config["backend"]["workers"] == workers
    assert summary.config["num_envs"] == workers * per


def test_one_batched_query_across_shards(local_ray: Any) -> None:
    sizes: list[int] = []

    class Counting(RandomPolicy):
        def infer(self, observation: Any, env_mask: Any) -> Any:
            sizes.append(int(np.asarray(env_mask).sum()))
            return super().infer(observation, env_mask)

    arena.evaluate(Counting, "debug/reach", episodes=4, backend="ray", workers=2, envs_per_worker=2, write=False)
    assert max(sizes) == 4  # the four slots of both shards answered by one query


def test_sigkilled_shard_is_replaced_and_nothing_is_lost(local_ray: Any, reference: list) -> None:
    records: list = []
    killed: list[int] = []

    def on_episode(record: Any, done: int, total: int) -> None:
        records.append(record)
        if not killed:
            killed.append(_pid(record))
            os.kill(killed[0], signal.SIGKILL)

    summary = arena.evaluate(
        "random", "debug/suite", episodes=3, seed=5, write=False, backend="ray", workers=2,
        env_config=SLOW, on_episode=on_episode,
    )  # fmt: skip
    assert outcomes(records) == [o for o in reference]
    assert summary.totals["shards_replaced"] >= 1
    assert summary.totals["episodes_lost"] >= 1
    assert any("replacement" in r.shard for r in records)


def test_hung_shard_times_out_and_is_replaced(local_ray: Any, reference: list) -> None:
    records: list = []
    stopped: list[int] = []

    def on_episode(record: Any, done: int, total: int) -> None:
        records.append(record)
        if not stopped:
            stopped.append(_pid(record))
            os.kill(stopped[0], signal.SIGSTOP)  # alive but silent

    try:
        summary = arena.evaluate(
            "random", "debug/suite", episodes=3, seed=5, write=False, env_config=SLOW, on_episode=on_episode,
            backend=BackendConfig("ray", workers=2, shard_timeout_s=3.0),
        )  # fmt: skip
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert outcomes(records) == reference
    assert summary.totals["shards_replaced"] >= 1


def test_unplaceable_resources_fail_clearly(local_ray: Any) -> None:
    t0 = time.monotonic()
    with pytest.raises(ShardPlacementError) as err:
        arena.evaluate(
            "random", "debug/reach", episodes=1, write=False,
            backend=BackendConfig("ray", workers=1, resources={"sim": 1}, placement_timeout_s=2.0),
        )  # fmt: skip
    message = str(err.value)
    assert "'sim': 1.0" in message and "--worker-resources" in message and "2 s" in message
    assert time.monotonic() - t0 < 60


@pytest.mark.parametrize(("first", "second"), [("local", "ray"), ("ray", "local")])
def test_interrupted_run_resumes_on_the_other_backend(
    local_ray: Any, reference: list, tmp_path: Path, first: str, second: str
) -> None:
    out = tmp_path / "run"

    def options(backend: str) -> dict[str, Any]:
        return {"backend": "ray", "workers": 2} if backend == "ray" else {"num_envs": 2}

    def stop_after_two(record: Any, done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        arena.evaluate(
            "random", "debug/suite", episodes=3, seed=5, output=out, on_episode=stop_after_two, **options(first)
        )
    kept = RunDir(out).load_records()
    assert 2 <= len(kept) < len(reference)
    summary = arena.evaluate("random", "debug/suite", episodes=3, seed=5, resume=out, **options(second))
    assert outcomes(RunDir(out).load_records()) == reference
    assert summary.overall.episodes == len(reference)
    assert json.loads((out / "summary.json").read_text())["config"]["backend"]["name"] == second


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    out, frontier = {pid}, [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, parent in parents.items() if parent == p and c not in out]
        out.update(kids)
        frontier.extend(kids)
    return out


def _listening(pids: set[int]) -> list[tuple[int, str]]:
    """(pid, local address) of every TCP socket listening in ``pids``."""
    inodes: dict[str, str] = {}
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A":  # LISTEN
                continue
            addr_hex = fields[1].split(":")[0]
            raw = bytes.fromhex(addr_hex)
            if family == socket.AF_INET:
                addr = socket.inet_ntop(family, raw[::-1])
            else:
                addr = socket.inet_ntop(family, b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4)))
            inodes[fields[9]] = addr
    out = []
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                out.append((pid, inodes[target[8:-1]]))
    return out


def _loopback(addr: str) -> bool:
    ip = ipaddress.ip_address(addr)
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def test_nothing_listens_beyond_loopback(local_ray: Any) -> None:
    records: list = []
    run(records, backend="ray", workers=2, episodes=1)
    ours = _descendants(os.getpid())
    listening = _listening(ours)
    assert len(listening) >= 3  # gcs, raylet, workers: the check sees Ray's sockets
    assert all(_loopback(addr) for _, addr in listening), listening


def test_cli_starts_and_stops_its_own_ray(tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "ARENA_PLUGINS": os.environ.get("ARENA_PLUGINS", "")}
    proc = subprocess.run(
        [sys.executable, "-m", "arena.cli", "eval", "--policy", "random", "--env", "debug/reach", "--episodes", "2",
         "--backend", "ray", "--workers", "2", "--output", str(out), "--no-progress", "--json"],
        capture_output=True, text=True, timeout=180, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["overall"]["episodes"] == 2
    assert summary["config"]["backend"]["workers"] == 2
    lines = [json.loads(x) for x in (out / "episodes.jsonl").read_text().splitlines()]
    assert all(x["shard"].startswith("ray shard ") for x in lines)


def test_without_ray_the_error_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from arena.backends.ray_runtime import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(ConfigError, match=r'pip install "arena-core\[ray\]"'):
        import_ray()


def test_bad_backend_options_are_one_line_errors() -> None:
    cases = [
        (dict(backend="local", workers=2), "--workers: only with --backend ray"),
        (dict(backend="ray", workers=2, num_envs=3), "--num-envs 3"),
        (dict(backend="ray", worker_resources='{"sim": -1}'), "non-negative number for resource 'sim'"),
        (dict(backend="ray", worker_resources="{sim"), "expected a JSON object"),
        (dict(backend="spark"), "--backend: expected one of local, ray"),
        (dict(backend="ray", workers=2, stages=3), "--stages 3"),
    ]
    for kwargs, expected in cases:
        with pytest.raises(ArenaError, match=re.escape(expected)):
            arena.evaluate("random", "debug/reach", episodes=1, write=False, **kwargs)


def test_a_shard_drops_messages_without_its_token(local_ray: Any) -> None:
    """The link listens on the node's address: a stranger's call is dropped before decoding, and the
    stranger never receives the coordinator's replies."""
    import zmq

    from arena.backends.ray_codec import pack_call
    from arena.backends.ray_env import RayVectorEnv
    from arena.builtins.debug_env import DebugEnvConfig
    from arena.env import EpisodeSpec

    env = RayVectorEnv(local_ray, "debug/reach", DebugEnvConfig(), 1, 1, {"CPU": 1.0})
    ctx = zmq.Context()
    rogue = ctx.socket(zmq.DEALER)
    rogue.setsockopt(zmq.LINGER, 0)
    try:
        rogue.connect(env.shards[0].link.endpoint)
        call = pack_call("reset", [0], np.zeros(1, bool), episodes=[EpisodeSpec("reach", 0, 1)])
        rogue.send_multipart([b"x" * 32, (1).to_bytes(8, "little"), call])
        rogue.send_multipart([b"garbage"])
        assert not rogue.poll(500)  # no reply to a wrong token or a malformed message
        res = env.reset([0], [EpisodeSpec("reach", 0, 1)], np.zeros(1, bool))
        assert res.error == [None]
        res = env.step([0], np.zeros((1, 2), np.float32), np.zeros(1, bool))
        assert res.error == [None] and not rogue.poll(200)  # the replies went to the coordinator only
    finally:
        rogue.close(0)
        ctx.term()
        env.close()


def test_report_and_compare_read_a_ray_run_as_any_other(local_ray: Any, tmp_path: Path) -> None:
    from arena.compare import compare_runs
    from arena.report import write_report

    ray_dir, local_dir = tmp_path / "ray", tmp_path / "local"
    run(backend="ray", workers=2, write=True, output=ray_dir)
    run(num_envs=2, write=True, output=local_dir)
    tasks = compare_runs([str(local_dir), str(ray_dir)]).to_dict()["tasks"]
    assert tasks and all(t["runs"][0] == t["runs"][1] for t in tasks.values())  # the same episodes, the same stats
    report = write_report(str(ray_dir), None)
    assert Path(report).read_text().count("<html") == 1
