"""Scaling out: Meta-World env steps/s in process, with process workers and on Ray shards.

The same MT10 episodes (arena's planned seeds) with the scripted expert's action held for a
chunk of H steps (the shape of a VLA emitting action chunks: one policy query, and one
shard call, per chunk) run on:

* ``in_process``: one slot stepped in this process;
* ``processes_W``: W spawned worker processes (arena.vector), W = 1, 2;
* ``ray_W``: W Ray env shards of one slot each on a local Ray (loopback), W = 1, 2.

Printed: env steps/s of each (steady state: from the end of the first episode to the end of the
last, so start-up and the first scene builds are left out), ``ratio_W=X`` = wall time on Ray
over wall time with process workers at equal worker count (target <= 1.15), and the cost of one
shard call per chunk measured alone (``shard_call_ms``: a Ray chunk call on a trivial env minus
the same call in process). Episodes are compared one by one across all configurations. Each
configuration runs in a fresh process; the best of ``--rounds`` counts.

Usage: python bench/scale.py [--episodes 5] [--horizon 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def _policy(horizon: int) -> Any:
    import numpy as np

    from arena.contract import ActionChunk
    from arena_metaworld.expert import ExpertPolicy

    class HeldExpert(ExpertPolicy):
        """The expert's action held for ``horizon`` steps: one query (and one shard call) per chunk."""

        def infer(self, observation: Any, env_mask: Any) -> ActionChunk:
            chunk = super().infer(observation, env_mask)
            return ActionChunk(np.repeat(chunk.numpy(), horizon, axis=1), chunk.env_ids)

        def describe(self) -> Any:
            desc = super().describe()
            desc.action_horizon = horizon
            desc.execution_horizon = None
            return desc

    return HeldExpert


def one(kind: str, workers: int, episodes: int, horizon: int, max_steps: int) -> dict[str, Any]:
    import arena_metaworld  # noqa: F401  (MUJOCO_GL before mujoco)
    from arena.evaluator import Evaluator, plan_episodes
    from arena.schedulers import ChunkedConfig, ChunkedScheduler
    from arena_metaworld.config import MetaWorldConfig
    from arena_metaworld.vector_env import MetaWorldVectorEnv

    runtime = None
    config = MetaWorldConfig()
    if kind == "ray":
        from arena.backends.ray_env import RayVectorEnv
        from arena.backends.ray_runtime import RayRuntime

        runtime = RayRuntime(None, num_cpus=workers).__enter__()
        env: Any = RayVectorEnv(runtime.ray, "metaworld/mt10", config, workers, 1, {"CPU": 1.0}, runtime=runtime)
    else:
        env = MetaWorldVectorEnv("mt10", config, workers, processes=kind == "processes")
    policy = _policy(horizon)(None, env.spec, env.num_envs)
    sched = ChunkedScheduler(ChunkedConfig(execution_horizon=horizon), env.num_envs, env.spec.action_dim, horizon)
    records: list = []
    marks: list[float] = []

    def ended(record: Any) -> None:
        records.append(record)
        marks.append(time.perf_counter())

    try:
        Evaluator(env, policy, sched, plan_episodes(env.spec.tasks, episodes, 0), max_steps, ended, False).run()
    finally:
        env.close()
    steps = sum(r.length for r in records[1:])
    return {
        "steps_per_s": steps / (marks[-1] - marks[0]),
        "wall_s": marks[-1] - marks[0],
        "outcomes": sorted([r.task, r.episode_index, r.success, r.length] for r in records),
    }


def shard_call(calls: int, horizon: int) -> dict[str, float]:
    """Seconds per chunk call of a trivial env: in process vs through one Ray shard."""
    import numpy as np

    from arena.backends.ray_env import RayVectorEnv
    from arena.backends.ray_runtime import RayRuntime
    from arena.builtins.debug_env import DebugEnvConfig, DebugEnvFamily
    from arena.env import EpisodeSpec

    ep = [EpisodeSpec("reach", 0, 1)]
    acts = np.zeros((1, horizon, 2), np.float32)
    counts, no = np.array([horizon]), np.zeros(1, bool)
    out = {}
    with RayRuntime(None, num_cpus=1) as runtime:
        envs = {
            "local": DebugEnvFamily().make("reach", DebugEnvConfig(), 1),
            "ray": RayVectorEnv(runtime.ray, "debug/reach", DebugEnvConfig(), 1, 1, {"CPU": 1.0}),
        }
        for name, env in envs.items():
            env.reset([0], ep, no)
            for _ in range(20):
                env.step_chunk([0], acts, counts, no)
            t0 = time.perf_counter()
            for _ in range(calls):
                env.step_chunk([0], acts, counts, no)
            out[name] = (time.perf_counter() - t0) / calls
            env.close()
    return out


def measure(*args: Any) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--one", json.dumps(list(args))]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=5, help="episodes per MT10 task (default 5)")
    ap.add_argument("--horizon", type=int, default=8, help="actions per chunk (default 8)")
    ap.add_argument("--max-steps", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=500, help="chunk calls for shard_call_ms (default 500)")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        kind, *rest = json.loads(args.one)
        print(json.dumps(shard_call(*rest) if kind == "call" else one(kind, *rest)))
        return
    configs = [("in_process", 1), ("processes", 1), ("ray", 1), ("processes", 2), ("ray", 2)]
    best: dict[str, dict[str, Any]] = {}
    for _ in range(args.rounds):
        for kind, w in configs:
            label = kind if kind == "in_process" else f"{kind}_{w}"
            got = measure(kind, w, args.episodes, args.horizon, args.max_steps)
            if label not in best or got["steps_per_s"] > best[label]["steps_per_s"]:
                best[label] = got
    reference = best["in_process"]["outcomes"]
    same = all(b["outcomes"] == reference for b in best.values())
    steps = sum(o[3] for o in reference)
    print(
        f"episodes={len(reference)} steps={steps} horizon={args.horizon} same_episodes={same} "
        + " ".join(f"{k}_steps_per_s={v['steps_per_s']:.0f}" for k, v in best.items()),
        flush=True,
    )
    for w in (1, 2):
        ratio = best[f"ray_{w}"]["wall_s"] / best[f"processes_{w}"]["wall_s"]
        print(f"workers={w}: ratio_{w}={ratio:.3f} (ray / process workers wall time)", flush=True)
    calls = measure("call", args.calls, args.horizon)
    print(
        f"shard_call_ms={1e3 * (calls['ray'] - calls['local']):.3f} per chunk of {args.horizon} "
        f"(ray {1e3 * calls['ray']:.3f} ms, in process {1e3 * calls['local']:.3f} ms)",
        flush=True,
    )
    if not same:
        raise SystemExit("the configurations gave different episodes")


if __name__ == "__main__":
    main()
