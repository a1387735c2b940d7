"""OpenpiPool: host spec parsing, and concurrent requests over several replicas."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from openpi_test_servers import ServerFactory, ServerProcess, free_port

from arena_openpi import OpenpiConnectionError, OpenpiPool, OpenpiServerError, parse_hosts

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("gpu-box", [("gpu-box", 8000)]),
        ("a:8000,b:8001", [("a", 8000), ("b", 8001)]),
        (" a:1 , b ", [("a", 1), ("b", 8000)]),
        ("[::1]:9000,[fe80::2]", [("::1", 9000), ("fe80::2", 8000)]),
        ("::1", [("::1", 8000)]),
        (["a:1", ("b", 2)], [("a", 1), ("b", 2)]),
    ],
)
def test_parse_hosts(spec: Any, expected: list[tuple[str, int]]) -> None:
    assert parse_hosts(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        ("a:8000,,b", "has an empty entry"),
        ("a:http", "port 'http' is not a number"),
        ("a:0", "outside 1..65535"),
        ("a:70000", "outside 1..65535"),
        (":8000", "invalid host name ''"),
        ("ws://a:8000", "looks like a URL"),
        ("[::1", "missing ']'"),
    ],
)
def test_parse_hosts_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_hosts(spec)


@pytest.fixture(scope="module")
def replicas(module_servers: ServerFactory) -> list[ServerProcess]:
    """Two replicas shared by the tests that do not kill them (each runs up to 4 inferences at once)."""
    return [module_servers.ours(concurrency=4), module_servers.ours(concurrency=4)]


def distinct_obs(i: int) -> dict[str, Any]:
    rng = np.random.default_rng(100 + i)
    return {
        "observation/image": rng.integers(0, 255, (64, 64, 3), dtype=np.uint8),
        "observation/state": rng.standard_normal(8).astype(np.float32),
        "prompt": f"obs {i}",
        "id": i,
        "delay_s": 0.02 + 0.01 * (i % 5),  # uneven so replies complete out of order
    }


def test_pool_16_observations_over_2_replicas(replicas: list[ServerProcess]) -> None:
    spec = ",".join(f"127.0.0.1:{r.port}" for r in replicas)
    observations = [distinct_obs(i) for i in range(16)]
    with OpenpiPool(spec, connections_per_host=4, reconnect_deadline_s=5) as pool:
        assert pool.size == 8
        start = time.monotonic()
        results = pool.infer_many(observations)
        elapsed = time.monotonic() - start
    assert len(results) == 16
    for obs, result in zip(observations, results, strict=True):
        assert result["id"] == obs["id"] and result["prompt"] == obs["prompt"]
        assert result["image_sum"] == int(obs["observation/image"].astype(np.int64).sum())
        expected = np.tile(obs["observation/state"][:7], (10, 1)) + np.arange(10, dtype=np.float32)[:, None]
        np.testing.assert_allclose(result["actions"], expected, rtol=0, atol=1e-6)
    pids = {r["pid"] for r in results}
    assert pids == {replica.proc.pid for replica in replicas}  # both replicas served
    sequential_s = sum(o["delay_s"] for o in observations)
    assert elapsed < sequential_s / 2, (elapsed, sequential_s)  # requests really overlapped


def test_small_burst_spreads_over_replicas(replicas: list[ServerProcess]) -> None:
    """4 requests, 2 replicas x 2 connections: each replica gets 2, not one replica all 4."""
    with OpenpiPool([("127.0.0.1", r.port) for r in replicas], connections_per_host=2) as pool:
        for _ in range(3):
            results = pool.infer_many([{"id": i, "delay_s": 0.05} for i in range(4)])
            per_replica = [sum(r["pid"] == replica.proc.pid for r in results) for replica in replicas]
            assert per_replica == [2, 2]


def test_infer_many_errors_in_input_order(replicas: list[ServerProcess]) -> None:
    with OpenpiPool(f"127.0.0.1:{replicas[0].port}", connections_per_host=2) as pool:
        batch = [{"id": 0}, {"fail": "second"}, {"id": 2}]
        with pytest.raises(OpenpiServerError, match="second"):
            pool.infer_many(batch)
        results = pool.infer_many(batch, return_exceptions=True)
        assert results[0]["id"] == 0 and isinstance(results[1], OpenpiServerError) and results[2]["id"] == 2
        assert pool.infer({"id": 3})["id"] == 3


def test_pool_refuses_unreachable_replica_at_construction(replicas: list[ServerProcess]) -> None:
    good = replicas[0]
    dead_port = free_port()
    with pytest.raises(OpenpiConnectionError, match=f"127.0.0.1:{dead_port}"):
        OpenpiPool(f"127.0.0.1:{good.port},127.0.0.1:{dead_port}", reconnect_deadline_s=0.3)


def test_failover_when_a_replica_dies(servers: ServerFactory) -> None:
    replicas = [servers.ours(), servers.ours()]
    with OpenpiPool(
        [("127.0.0.1", r.port) for r in replicas], connections_per_host=1, reconnect_deadline_s=0.3
    ) as pool:
        replicas[0].kill()
        results = pool.infer_many([{"id": i} for i in range(4)])
    assert [r["id"] for r in results] == [0, 1, 2, 3]
    assert {r["pid"] for r in results} == {replicas[1].proc.pid}
