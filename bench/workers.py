"""The core worker pool on Meta-World: CPU per env step and the throughput of --num-envs 2 over 1.

Same episodes (MT10, Meta-World's scripted expert, arena's planned seeds) on both sides:

* in process: ``--num-envs 1``, the scene stepped in this process;
* workers: ``--num-envs 2``, one spawned worker per slot, observations in shared memory.

Printed, state-only and with one 224x224 ``corner`` camera rendered every step (the expert
declared as a camera policy, so the loop renders for every query), the camera as arena renders
it by default (no multisampling) and with ``--antialias true`` (``camera_aa``, Meta-World's 4x):

* ``cpu_ratio_*``: CPU seconds per env step (this process plus its workers) with workers over in
  process (target <= 1.2);
* ``speedup_*``: env steps per second of ``--num-envs 2`` over ``--num-envs 1`` on this 2-core
  machine (targets >= 1.3 state-only, >= 1.7 with the camera).

Both are measured in steady state, from the end of the first episode to the end of the last
(worker start-up, imports and scene builds of the first episodes are left out), with CPU read
from /proc for the workers. Each side runs in a fresh process; the best of ``--rounds`` counts.
The episodes of both sides are compared one by one.

Usage: python bench/workers.py [--episodes 3] [--camera-episodes 1] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

_TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def one(
    num_envs: int, camera: bool, episodes: int, max_steps: int, stages: int = 1, antialias: bool = False
) -> dict[str, Any]:
    import arena_metaworld  # noqa: F401  (MUJOCO_GL before mujoco)
    from arena.evaluator import Evaluator, plan_episodes
    from arena.schedulers import ChunkedConfig, ChunkedScheduler
    from arena_metaworld.config import MetaWorldConfig
    from arena_metaworld.expert import ExpertPolicy
    from arena_metaworld.vector_env import MetaWorldVectorEnv

    class CameraExpert(ExpertPolicy):
        def describe(self):  # noqa: ANN202
            desc = super().describe()
            desc.cameras = {"corner": None}
            return desc

    env = MetaWorldVectorEnv("mt10", MetaWorldConfig(cameras=("corner",), antialias=antialias), num_envs)
    policy = (CameraExpert if camera else ExpertPolicy)(None, env.spec, num_envs)
    sched = ChunkedScheduler(ChunkedConfig(), num_envs, env.spec.action_dim, 1)
    records: list = []
    marks: list[tuple[float, float]] = []

    def cpu() -> float:
        return time.process_time() + sum(_proc_cpu(env.worker_pid(s)) for s in range(num_envs))

    def ended(record: Any) -> None:
        records.append(record)
        marks.append((time.perf_counter(), cpu()))

    plan = plan_episodes(env.spec.tasks, episodes, 0)
    try:
        ev = Evaluator(env, policy, sched, plan, max_steps, ended, policy_uses_cameras=camera, stages=stages)
        ev.run()
    finally:
        env.close()
    steps = sum(r.length for r in records[1:])
    return {
        "steps_per_s": steps / (marks[-1][0] - marks[0][0]),
        "cpu_per_step_ms": 1e3 * (marks[-1][1] - marks[0][1]) / steps,
        "outcomes": sorted([r.task, r.episode_index, r.success, r.length] for r in records),
        "renders": env.render_count(),
        "scene_builds": ev.rebuilds,
    }


def measure(num_envs: int, camera: bool, episodes: int, max_steps: int, antialias: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--one", json.dumps([num_envs, camera, episodes, max_steps, 1, antialias])]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=3, help="episodes per MT10 task, state-only (default 3)")
    ap.add_argument("--camera-episodes", type=int, default=1, help="episodes per task with the camera (default 1)")
    ap.add_argument("--max-steps", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(*json.loads(args.one))))
        return
    rows = (
        ("state", False, args.episodes, False),
        ("camera", True, args.camera_episodes, False),  # the default, --antialias false
        ("camera_aa", True, args.camera_episodes, True),  # --antialias true (Meta-World's 4x multisampling)
    )
    for label, camera, episodes, antialias in rows:
        best: dict[int, dict[str, Any]] = {}
        for _ in range(args.rounds):
            for n in (1, 2):
                got = measure(n, camera, episodes, args.max_steps, antialias)
                if n not in best or got["steps_per_s"] > best[n]["steps_per_s"]:
                    best[n] = got
        same = best[1]["outcomes"] == best[2]["outcomes"]
        steps = sum(o[3] for o in best[1]["outcomes"])
        print(
            f"{label}: episodes={len(best[1]['outcomes'])} steps={steps} same_episodes={same} "
            f"in_process_steps_per_s={best[1]['steps_per_s']:.0f} workers2_steps_per_s={best[2]['steps_per_s']:.0f} "
            f"in_process_cpu_ms_per_step={best[1]['cpu_per_step_ms']:.3f} "
            f"workers2_cpu_ms_per_step={best[2]['cpu_per_step_ms']:.3f} "
            f"scene_builds={best[1]['scene_builds']}/{best[2]['scene_builds']} "
            f"cpu_ratio_{label}={best[2]['cpu_per_step_ms'] / best[1]['cpu_per_step_ms']:.3f} "
            f"speedup_{label}={best[2]['steps_per_s'] / best[1]['steps_per_s']:.3f}",
            flush=True,
        )
        if not same:
            raise SystemExit(f"{label}: --num-envs 2 gave other episodes than --num-envs 1")


if __name__ == "__main__":
    main()
