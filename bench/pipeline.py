"""Pipelined stages vs the synchronous loop, against real reference servers on 127.0.0.1.

A served policy answers after sleeping ``I`` ms per observation (no CPU: a busy GPU
whose time grows with the batch), behind the GR00T protocol (``arena_gr00t``'s REP
server) and the openpi protocol (``arena_openpi``'s WebSocket server, one request
per observation), each a separate process serving one request at a time. The env is
``debug/suite`` whose every step burns ``S`` ms of CPU (``--step-cost-ms``) in this
process. Both sides run the same episodes; ``--stages 1`` vs ``--stages 2``:

* ``ratio=`` throughput(stages 2) / throughput(stages 1) at I = S (target >= 1.8, ideal 2.0);
* the sweeps I >> S and S >> I (the ratio must not fall below 0.97);
* the real Meta-World adapter (two worker processes) with a served horizon-8 policy (the
  scripted expert's action held for 8 steps), same comparison.

With a server whose latency does not grow with the batch, a split batch costs a second
call, and the ideal is (I + N*S) / max(2*I, N*S) <= 1.5 instead; ``--flat`` measures that.
Each configuration alternates the two sides ``--rounds`` times; the best round of each counts.
Throughput is env steps per second between the end of the first episode and the end of the
last (start-up and preflight are the same on both sides and left out).
Outcomes of both sides are compared episode by episode.

Usage: python bench/pipeline.py [--latency-ms 10] [--rounds 3] [--episodes 30]
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import attrs  # noqa: E402
import numpy as np  # noqa: E402

from arena.contract import ActionChunk, Observation  # noqa: E402
from arena.policy import Policy, PolicyDescription  # noqa: E402

HERE = Path(__file__).resolve().parent


@attrs.define
class SleepyConfig:
    action_horizon: int = 1
    latency_ms: float = 10.0
    flat: bool = False


class SleepyGoal(Policy):
    """debug/*: open-loop chunk straight to the goal; sleeps latency_ms per row (or per call with flat)."""

    Config = SleepyConfig

    def _sleep(self, rows: int) -> None:
        time.sleep(self.config.latency_ms / 1000 * (1 if self.config.flat else rows))

    def infer(self, observation: Observation, env_mask: np.ndarray) -> ActionChunk:
        rows = np.flatnonzero(env_mask)
        self._sleep(len(rows))
        out = np.zeros((len(rows), self.config.action_horizon, 2), np.float32)
        for k, r in enumerate(rows):
            p = np.asarray(observation.state["position"][r], np.float32).copy()
            g = np.asarray(observation.state["goal"][r], np.float32)
            for j in range(self.config.action_horizon):
                a = np.clip((g - p) / np.float32(0.1), -1.0, 1.0).astype(np.float32)
                out[k, j] = a
                p = np.clip(p + 0.1 * a, 0.0, 1.0)
        return ActionChunk(out, observation.env_ids[rows])

    def describe(self) -> PolicyDescription:
        return PolicyDescription(
            family="sleepy-goal", action_horizon=self.config.action_horizon, state={"position": 2, "goal": 2}
        )


class SleepyExpertHold(SleepyGoal):
    """Meta-World: the scripted expert's action held for action_horizon steps; sleeps like SleepyGoal."""

    def __init__(self, config: SleepyConfig, env_spec: Any, num_envs: int) -> None:
        super().__init__(config, env_spec, num_envs)
        from arena_metaworld.expert import ExpertPolicy

        self.expert = ExpertPolicy(None, env_spec, num_envs)

    def infer(self, observation: Observation, env_mask: np.ndarray) -> ActionChunk:
        self._sleep(int(np.count_nonzero(env_mask)))
        chunk = self.expert.infer(observation, env_mask)
        held = np.repeat(chunk.numpy(), self.config.action_horizon, axis=1)
        return ActionChunk(held, chunk.env_ids)

    def describe(self) -> PolicyDescription:
        desc = self.expert.describe()
        desc.action_horizon = self.config.action_horizon
        desc.execution_horizon = None
        return desc


# -- the server side (a subprocess) --------------------------------------------------------------


def serve(protocol: str, env: str, port: int, config: dict[str, Any]) -> None:
    from arena.remote.serving import ServedPolicy

    cls = SleepyExpertHold if env.startswith("metaworld/") else SleepyGoal
    served = ServedPolicy(cls, env, config, max_batch=16)
    if protocol == "gr00t":
        from arena_gr00t import Gr00tServer
        from arena_gr00t.serve import ServedGr00tHandler

        server = Gr00tServer(ServedGr00tHandler(served), host="127.0.0.1", port=port)
        print("listening", flush=True)
        server.serve_forever()
    else:
        from arena_openpi.serve import ServedOpenpiPolicy
        from arena_openpi.server import OpenpiServer

        handler = ServedOpenpiPolicy(served)
        server = OpenpiServer(handler, handler.metadata, host="127.0.0.1", port=port, concurrency=1)
        server.start()
        print("listening", flush=True)
        while not server.wait(0.5):
            pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(protocol: str, env: str, config: dict[str, Any]) -> tuple[subprocess.Popen, int]:
    import json

    port = _free_port()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", protocol, "--env", env, "--port", str(port)]
    proc = subprocess.Popen([*cmd, "--config", json.dumps(config)], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "listening" in line:
            return proc, port
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"{protocol} server for {env} did not start")


# -- the client side -----------------------------------------------------------------------------


def run(protocol: str, port: int, env: str, stages: int, **kw: Any) -> tuple[float, int, list]:
    import arena

    records: list = []
    ends: list[float] = []
    policy_config = {"port": port} if protocol == "gr00t" else {"host": f"127.0.0.1:{port}"}

    def ended(record: Any, done: int, total: int) -> None:
        records.append(record)
        ends.append(time.perf_counter())

    summary = arena.evaluate(
        protocol, env, write=False, stages=stages, policy_config=policy_config, on_episode=ended, **kw
    )  # fmt: skip
    # steady state: from the first episode's end to the last's (env start-up and preflight left out)
    steps = sum(r.length for r in records[1:])
    out = sorted((r.task, r.episode_index, r.success, r.length) for r in records)
    return steps / (ends[-1] - ends[0]), summary.totals["env_steps"], out


def compare(label: str, protocol: str, env: str, server_config: dict, rounds: int, **kw: Any) -> float:
    proc, port = start_server(protocol, env, server_config)
    try:
        best = {1: 0.0, 2: 0.0}
        outcomes: dict[int, list] = {}
        for _ in range(rounds):
            for stages in (1, 2):
                rate, steps, outcomes[stages] = run(protocol, port, env, stages, **kw)
                best[stages] = max(best[stages], rate)
        same = outcomes[1] == outcomes[2]
        ratio = best[2] / best[1]
        successes = sum(o[2] for o in outcomes[1])
        print(
            f"{label}: protocol={protocol} env={env} server={server_config} steps={steps} successes={successes} "
            f"stages1_steps_per_s={best[1]:.1f} stages2_steps_per_s={best[2]:.1f} same_episodes={same} "
            f"ratio_{label}={ratio:.3f}",
            flush=True,
        )
        if not same:
            raise SystemExit(f"{label}: --stages 2 gave other episodes than --stages 1")
        return ratio
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    import json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency-ms", type=float, default=10.0, help="I: server sleep per observation (default 10)")
    ap.add_argument("--episodes", type=int, default=30, help="episodes per task (debug/suite has 2 tasks)")
    ap.add_argument("--num-envs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--protocols", default="gr00t,openpi")
    ap.add_argument("--no-sweep", action="store_true", help="only the I = S configuration")
    ap.add_argument("--no-metaworld", action="store_true")
    ap.add_argument("--flat", action="store_true", help="also a server whose latency does not grow with the batch")
    ap.add_argument("--serve", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--env", default="debug/suite", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--config", default="{}", help=argparse.SUPPRESS)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.serve:
        serve(args.serve, args.env, args.port, json.loads(args.config))
        return
    import arena_metaworld  # noqa: F401  (MUJOCO_GL before mujoco)

    i = args.latency_ms
    common = dict(episodes=args.episodes, num_envs=args.num_envs, seed=0)
    ratios = []
    for protocol in args.protocols.split(","):
        cases = [("balanced", i, i)]
        if not args.no_sweep:
            cases += [("infer_bound", i, i / 10), ("step_bound", i / 10, i)]
        for label, latency, cost in cases:
            r = compare(
                f"{label}", protocol, "debug/suite", {"latency_ms": latency}, args.rounds,
                env_config={"step_cost_ms": cost}, **common,
            )  # fmt: skip
            if label == "balanced":
                ratios.append(r)
        if args.flat:
            compare(
                "flat_latency", protocol, "debug/suite", {"latency_ms": i, "flat": True}, args.rounds,
                env_config={"step_cost_ms": i / args.num_envs}, **common,
            )  # fmt: skip
    if not args.no_metaworld:
        compare(
            "metaworld_h8", "gr00t", "metaworld/reach-v3", {"latency_ms": i, "action_horizon": 8}, args.rounds,
            episodes=4, num_envs=2, seed=0, max_steps=120, scheduler_config={"execution_horizon": 8},
        )  # fmt: skip
    print(f"ratio={min(ratios):.3f}")


if __name__ == "__main__":
    main()
