"""Success rate of Meta-World's scripted experts on MT50 through arena (target >= 0.95).

Runs ``arena.evaluate(policy="expert", env="metaworld/mt50", episodes=10)``:
the experts read the canonical Observation's named state groups and find
their task from the instruction. Meta-World's experts reach about 0.98 when
stepped by hand; a clearly lower number means the observation mapping or
the loop is wrong. Prints per-task rates and ``mean_success=X``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import arena  # noqa: E402
import arena_metaworld  # noqa: E402, F401  (MUJOCO_GL before mujoco)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="metaworld/mt50")
    ap.add_argument("--episodes", type=int, default=10, help="episodes per task")
    ap.add_argument("--num-envs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", default=None, help="run directory (default: no files written)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    summary = arena.evaluate(
        policy="expert",
        env=args.env,
        episodes=args.episodes,
        num_envs=args.num_envs,
        seed=args.seed,
        output=args.output,
        write=args.output is not None,
    )
    wall = time.perf_counter() - t0
    for task, stats in sorted(summary.tasks.items()):
        flag = "" if stats.success_rate >= 0.9 else "   <-- below 0.9"
        print(
            f"{task:30s} {stats.successes:3d}/{stats.episodes:<3d} {stats.success_rate:.2f} errors={stats.errors}{flag}"
        )
    task_mean = sum(s.success_rate for s in summary.tasks.values()) / len(summary.tasks)
    o = summary.overall
    print(
        f"episodes={o.episodes} successes={o.successes} errors={o.errors} mean_length={o.mean_length:.1f} wall_s={wall:.0f}"
    )
    print(f"mean_success={task_mean:.4f}")


if __name__ == "__main__":
    main()
