"""Fan-out bench: 8 observations needing inference at once, served by 1 vs 4 openpi replicas.

Each replica takes a fixed 20 ms per inference and serves one request at a time, like a stock
openpi server (which runs inference on its event loop). With one replica the 8 requests queue
(~160 ms a round); with 4 replicas the pool spreads them 2 per replica (~40 ms a round). The
script prints one line per configuration and then ``ratio=X`` (4-replica throughput over
1-replica throughput; target >= 3).

    .venv/bin/python bench/openpi_fanout.py [--rounds 100] [--latency-ms 20] [--stock]

``--stock`` runs openpi's own WebsocketPolicyServer (PyPI openpi-server) as the replicas
instead of arena_openpi's OpenpiServer(concurrency=1).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
logger = logging.getLogger("openpi_fanout")


class FixedLatencyPolicy:
    """Sleeps a fixed time per inference and returns a pi05_libero-shaped action chunk."""

    def __init__(self, latency_s: float = 0.02) -> None:
        self.latency_s = latency_s

    def infer(self, obs: dict[str, Any]) -> dict[str, Any]:
        time.sleep(self.latency_s)
        return {"actions": np.zeros((10, 7), dtype=np.float32), "id": obs.get("id")}


def make_policy(latency_s: float = 0.02) -> FixedLatencyPolicy:
    return FixedLatencyPolicy(latency_s)


def _serve_stock(port: int, latency_s: float) -> None:
    from openpi_client import base_policy
    from openpi_server import WebsocketPolicyServer

    class StockFixedLatency(FixedLatencyPolicy, base_policy.BasePolicy):
        pass

    logging.basicConfig(level=logging.WARNING)
    WebsocketPolicyServer(StockFixedLatency(latency_s), host="127.0.0.1", port=port).serve_forever()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_replica(latency_s: float, stock: bool, workdir: pathlib.Path) -> tuple[subprocess.Popen, int]:
    from arena_openpi import healthz

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
    port = _free_port()
    if stock:
        cmd = [
            sys.executable,
            str(HERE / "openpi_fanout.py"),
            "--serve-stock",
            str(port),
            "--latency-ms",
            str(latency_s * 1000),
        ]
    else:
        cmd = [
            sys.executable,
            "-m",
            "arena_openpi.server",
            "--policy",
            "openpi_fanout:make_policy",
            "--policy-args",
            f'{{"latency_s": {latency_s}}}',
            "--port",
            str(port),
            "--concurrency",
            "1",
            "--log-level",
            "WARNING",
        ]
    log = open(workdir / f"replica-{port}.log", "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not healthz("127.0.0.1", port, timeout_s=1.0):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"replica on port {port} did not start; see {log.name}")
        time.sleep(0.05)
    return proc, port


@contextlib.contextmanager
def replicas(args: argparse.Namespace, prefix: str) -> Iterator[list[int]]:
    """``args.replicas`` fixed-latency replicas in subprocesses (see :func:`add_replica_arguments`): their ports."""
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        try:
            ports = []
            for _ in range(args.replicas):
                proc, port = _start_replica(args.latency_ms / 1000, args.stock, pathlib.Path(tmp))
                procs.append(proc)
                ports.append(port)
            yield ports
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()


def add_replica_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of the replicas and of the timing, shared with openpi_policy_fanout.py."""
    parser.add_argument("--replicas", type=int, default=4, help="replicas in the fan-out configuration")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--stock", action="store_true", help="replicas run openpi's own WebsocketPolicyServer")


def server_label(stock: bool) -> str:
    return "stock openpi WebsocketPolicyServer" if stock else "arena_openpi OpenpiServer(concurrency=1)"


def time_rounds(rounds: int, one_round: Callable[[], object]) -> tuple[float, dict[str, float]]:
    """``one_round()`` ``rounds`` times: total seconds, and the median and longest round in ms."""
    round_s = []
    start = time.perf_counter()
    for _ in range(rounds):
        t0 = time.perf_counter()
        one_round()
        round_s.append(time.perf_counter() - t0)
    total_s = time.perf_counter() - start
    return total_s, {"round_ms_p50": statistics.median(round_s) * 1000, "round_ms_max": max(round_s) * 1000}


def _observations(n: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    return [
        {
            "observation/image": rng.integers(0, 255, (224, 224, 3), dtype=np.uint8),
            "observation/wrist_image": rng.integers(0, 255, (224, 224, 3), dtype=np.uint8),
            "observation/state": rng.standard_normal(8).astype(np.float32),
            "prompt": "put the black bowl on the plate",
            "id": i,
        }
        for i in range(n)
    ]


def run_config(ports: list[int], connections: int, batch: int, rounds: int, warmup: int) -> dict[str, float]:
    from arena_openpi import OpenpiPool

    per_host = max(1, connections // len(ports))
    observations = _observations(batch)
    with OpenpiPool([("127.0.0.1", p) for p in ports], connections_per_host=per_host) as pool:
        for _ in range(warmup):
            pool.infer_many(observations)

        def one_round() -> None:
            results = pool.infer_many(observations)
            assert [r["id"] for r in results] == list(range(batch))

        total_s, round_ms = time_rounds(rounds, one_round)
    return {
        "replicas": len(ports),
        "connections": per_host * len(ports),
        "obs_per_s": batch * rounds / total_s,
        **round_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8, help="observations needing inference at once")
    add_replica_arguments(parser)
    parser.add_argument("--serve-stock", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_stock:
        _serve_stock(args.serve_stock, args.latency_ms / 1000)
        return
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    with replicas(args, "openpi-fanout-") as ports:
        results = [
            run_config(ports[:1], args.batch, args.batch, args.rounds, args.warmup),
            run_config(ports, args.batch, args.batch, args.rounds, args.warmup),
        ]
    print(f"server={server_label(args.stock)!r} batch={args.batch} latency_ms={args.latency_ms} rounds={args.rounds}")
    for r in results:
        print(
            f"replicas={r['replicas']} connections={r['connections']} obs_per_s={r['obs_per_s']:.1f} "
            f"round_ms_p50={r['round_ms_p50']:.1f} round_ms_max={r['round_ms_max']:.1f}"
        )
    print(f"ratio={results[1]['obs_per_s'] / results[0]['obs_per_s']:.2f}")


if __name__ == "__main__":
    main()
