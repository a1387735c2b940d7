"""OpenVLA fan-out: 8 envs needing an action at once, against 1 and against 4 server replicas.

Each replica is ``arena-openvla``'s reference server (Starlette + uvicorn, one inference at a
time like one model on one GPU) hosting a policy that takes a fixed 20 ms per request
without using the CPU (sleep). The client is ``--policy openvla`` (the kit's RemotePolicy: one
request per observation, spread over the replicas' connections). Printed: queries (8 envs
each) per second with 1 and with 4 replicas, and ``ratio=X`` = 4 replicas over 1 (target
>= 3.5; ideal 4).

Usage: python bench/openvla_fanout.py [--envs 8] [--latency-ms 20] [--rounds 80]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

#: the env renders at the model's input size (as a VLA evaluation does), so nothing is resized
ENV_CONFIG = {"image_size": 224}
MAPPING = """
name = "point2d"
prompt_key = "instruction"
[images.image]
camera = "top"
size = [224, 224]
[state.proprio]
groups = ["position", "goal"]
"""


def _sleepy(latency_s: float) -> Any:
    from arena.builtins.policies import ZeroPolicy

    class Sleepy(ZeroPolicy):
        def infer(self, observation: Any, env_mask: Any) -> Any:
            time.sleep(latency_s * int(np.asarray(env_mask).sum()))
            return super().infer(observation, env_mask)

    return Sleepy


def serve(port: int, latency_ms: float) -> None:
    import uvicorn
    from arena_openvla.mapping import OpenvlaMapping
    from arena_openvla.server import ActHandler, make_app

    from arena.remote.serving import ServedPolicy

    served = ServedPolicy(_sleepy(latency_ms / 1000), "debug/reach", env_config=ENV_CONFIG, max_batch=1)
    handler = ActHandler(served, OpenvlaMapping.from_toml(MAPPING, "bench"))
    uvicorn.run(make_app(handler), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(n: int, latency_ms: float) -> tuple[list[subprocess.Popen], list[int]]:
    ports = [_free_port() for _ in range(n)]
    procs = [
        subprocess.Popen([sys.executable, __file__, "--serve", json.dumps([p, latency_ms])], stdin=subprocess.DEVNULL)
        for p in ports
    ]
    deadline = time.monotonic() + 60
    for p in ports:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", p), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"server on port {p} did not start") from None
                time.sleep(0.1)
    return procs, ports


def measure(ports: list[int], envs: int, rounds: int, mapping_path: str) -> float:
    from arena_openvla.policy import OpenvlaConfig, OpenvlaPolicy

    from arena.assembly import RunAssembly

    spec = RunAssembly().spec("debug/reach", ENV_CONFIG)
    config = OpenvlaConfig(host=",".join(f"127.0.0.1:{p}" for p in ports), mapping=mapping_path)
    rng = np.random.default_rng(0)
    from arena.contract import Observation

    obs = Observation(
        images={c: rng.integers(0, 255, (envs, h, w, 3), dtype=np.uint8) for c, (h, w) in spec.cameras.items()},
        state={g: rng.standard_normal((envs, len(e))).astype(np.float32) for g, e in spec.state_groups.items()},
        instruction=[spec.tasks[0].instruction] * envs,
        env_ids=np.arange(envs),
    )
    mask = np.ones(envs, bool)
    with OpenvlaPolicy(config, spec, envs) as policy:
        desc = policy.describe()
        if desc.problems:
            raise SystemExit("preflight problems: " + "; ".join(desc.problems))
        for _ in range(10):  # warm-up: connections, the servers' worker threads
            policy.infer(obs, mask)
        t0 = time.perf_counter()
        for _ in range(rounds):
            policy.infer(obs, mask)
        return rounds / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envs", type=int, default=8)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=80)
    ap.add_argument("--serve", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(*json.loads(args.serve))
        return
    procs, ports = start(4, args.latency_ms)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "point2d.toml")
        Path(path).write_text(MAPPING)
        try:
            one = measure(ports[:1], args.envs, args.rounds, path)
            four = measure(ports, args.envs, args.rounds, path)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(10)
    ideal = 1000 / (args.envs * args.latency_ms)
    print(
        f"envs={args.envs} latency_ms={args.latency_ms:g} queries_per_s_1_replica={one:.2f} "
        f"queries_per_s_4_replicas={four:.2f} (ideal {ideal:.2f} / {4 * ideal:.2f}) ratio={four / one:.3f}",
        flush=True,
    )


if __name__ == "__main__":
    os.environ.setdefault("MUJOCO_GL", "egl")
    main()
