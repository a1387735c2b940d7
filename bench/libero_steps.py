"""LIBERO on this machine: env steps per second of one worker with 0, 1 and 2 cameras rendered, and the
scripted expert's success on libero_object.

* ``steps``: one slot in process (what each worker process of ``--num-envs N`` runs), the default
  256x256 frames, OSC_POSE actions drawn at random; rendered every step with no camera, with
  ``agentview``, and with ``agentview`` + ``eye_in_hand``. Printed as steps/s and ms per step.
* ``expert``: ``--policy libero-expert --privileged true --cameras ''`` on ``libero/libero_object``,
  ``--episodes`` per task (default 5), through arena's evaluation loop with ``--num-envs``
  (default 2): a success table per task and overall.

Usage: python bench/libero_steps.py [--steps 60] [--episodes 5] [--num-envs 2] [--skip-expert]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")


def steps_per_s(cameras: tuple[str, ...], steps: int) -> tuple[float, float]:
    import numpy as np
    from arena_libero.config import LiberoConfig
    from arena_libero.layout import slices
    from arena_libero.sim import LiberoSim
    from arena_libero.tasks import task_names

    from arena.env import EpisodeSpec

    config = LiberoConfig(cameras=cameras)
    sim = LiberoSim("libero_object", config)
    state = np.zeros(max(s.stop for s in slices(False).values()), np.float32)
    frames = {c: np.zeros((config.image_size, config.image_size, 3), np.uint8) for c in cameras}
    actions = np.random.default_rng(0).uniform(-0.3, 0.3, (steps + 10, 7))
    try:
        sim.reset(EpisodeSpec(task_names("libero_object")[0], 0, 0), state)
        for a in actions[:10]:  # warm up: first renders build the GL context
            sim.step(a, state)
            sim.render(frames)
        t0, c0 = time.perf_counter(), time.process_time()
        for a in actions[10:]:
            sim.step(a, state)
            sim.render(frames)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        sim.close()
    return steps / wall, 1e3 * cpu / steps


def expert(episodes: int, num_envs: int) -> None:
    import arena

    t0 = time.perf_counter()
    summary = arena.evaluate(
        "libero-expert", "libero/libero_object", episodes=episodes, num_envs=num_envs, write=False,
        env_config={"privileged": True, "cameras": ()},
    )  # fmt: skip
    wall = time.perf_counter() - t0
    for name, task in summary.tasks.items():
        print(f"expert: {name} successes={task.successes}/{task.episodes} mean_len={task.mean_length:.1f}")
    o = summary.overall
    print(
        f"expert: libero_object overall successes={o.successes}/{o.episodes} rate={o.successes / o.episodes:.3f} "
        f"num_envs={num_envs} wall_s={wall:.0f}",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60, help="measured steps per camera setting (default 60)")
    ap.add_argument("--episodes", type=int, default=5, help="expert episodes per libero_object task (default 5)")
    ap.add_argument("--num-envs", type=int, default=2, help="slots for the expert run (default 2)")
    ap.add_argument("--skip-expert", action="store_true", help="only the steps/s rows")
    args = ap.parse_args()
    for label, cameras in (("0", ()), ("1", ("agentview",)), ("2", ("agentview", "eye_in_hand"))):
        rate, cpu_ms = steps_per_s(cameras, args.steps)
        print(f"steps: cameras={label} steps_per_s={rate:.1f} cpu_ms_per_step={cpu_ms:.1f} size=256", flush=True)
    if not args.skip_expert:
        expert(args.episodes, args.num_envs)


if __name__ == "__main__":
    main()
