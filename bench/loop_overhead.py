"""Per-step overhead of arena's in-process path over a hand-written Meta-World loop.

Both sides run the same tasks, episodes and seeds (arena's planned episode
seeds) with Meta-World's scripted experts and no rendering, one env:

* plain: a metaworld env + the task's ``metaworld.policies`` object, stepped
  by a bare ``for`` loop (no arena code at all);
* adapter: arena_metaworld's VectorEnv + ExpertPolicy driven by a minimal
  loop (no evaluator, no scheduler): isolates the adapter's own cost;
* arena: ``arena.evaluate(policy="expert", env="metaworld/<task>", num_envs=1)``.

Prints ``ratio=X`` (arena wall time / plain wall time, fastest of the
interleaved repeats; target <= 1.10), the same ratio in process CPU time
(steadier on a shared machine), the adapter-only ratio, and whether all sides
saw the same per-episode outcomes.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

DEFAULT_TASKS = "reach-v3,push-v3,pick-place-v3,drawer-open-v3,button-press-topdown-v3,window-open-v3"


def plain_loop(tasks: list[str], episodes: int, seed: int, max_steps: int) -> tuple[float, dict]:
    """The reference: metaworld alone, seeded exactly as arena_metaworld seeds a reset."""
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS
    from metaworld.policies import ENV_POLICY_MAP

    from arena.evaluator import episode_seed  # only to get the same seeds

    warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high")
    outcomes = {}
    t0 = time.perf_counter()
    for task in tasks:
        env = ALL_V3_ENVIRONMENTS[task]()
        env._partially_observable = False
        env.__dict__.pop("sawyer_observation_space", None)
        env._set_task_called = True
        env._freeze_rand_vec = False
        env.seeded_rand_vec = True
        env.max_path_length = 2**62
        policy = ENV_POLICY_MAP[task]()
        for i in range(episodes):
            env.seed(episode_seed(seed, task, i))
            obs, _ = env.reset()
            success, length = False, max_steps
            for t in range(max_steps):
                action = np.clip(policy.get_action(obs), -1.0, 1.0)
                obs, _, _, _, info = env.step(action)
                if info["success"]:
                    success, length = True, t + 1
                    break
            outcomes[(task, i)] = (success, length)
        env.close()
    return time.perf_counter() - t0, outcomes


def adapter_loop(tasks: list[str], episodes: int, seed: int, max_steps: int) -> tuple[float, dict]:
    """arena_metaworld's VectorEnv and expert, stepped by the smallest possible loop."""
    from arena.env import EpisodeSpec
    from arena.evaluator import episode_seed
    from arena_metaworld.config import MetaWorldConfig
    from arena_metaworld.expert import ExpertPolicy
    from arena_metaworld.vector_env import MetaWorldVectorEnv

    outcomes = {}
    ids, mask, no_render = np.zeros(1, np.int64), np.ones(1, bool), np.zeros(1, bool)
    t0 = time.perf_counter()
    for task in tasks:
        env = MetaWorldVectorEnv(task, MetaWorldConfig(), 1)
        policy = ExpertPolicy(None, env.spec, 1)
        for i in range(episodes):
            obs = env.reset(ids, [EpisodeSpec(task, i, episode_seed(seed, task, i))], no_render).observation
            success, length = False, max_steps
            for t in range(max_steps):
                res = env.step(ids, policy.infer(obs, mask).actions[:, 0], no_render)
                obs = res.observation
                if res.success[0]:
                    success, length = True, t + 1
                    break
            outcomes[(task, i)] = (success, length)
        env.close()
    return time.perf_counter() - t0, outcomes


def arena_loop(tasks: list[str], episodes: int, seed: int, max_steps: int, plugins: object) -> tuple[float, dict]:
    import arena

    outcomes = {}
    t0 = time.perf_counter()
    for task in tasks:

        def record(rec, done, total, task=task):  # noqa: ANN001, ANN202
            outcomes[(task, rec.episode_index)] = (rec.success, rec.length)

        arena.evaluate(
            policy="expert",
            env=f"metaworld/{task}",
            episodes=episodes,
            num_envs=1,
            seed=seed,
            max_steps=max_steps,
            write=False,
            plugins=plugins,
            on_episode=record,
        )
    return time.perf_counter() - t0, outcomes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default=DEFAULT_TASKS, help="comma-separated Meta-World tasks")
    ap.add_argument("--episodes", type=int, default=5, help="episodes per task")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the fastest of each side counts")
    args = ap.parse_args()
    tasks = args.tasks.split(",")

    import arena_metaworld  # noqa: F401  (MUJOCO_GL before mujoco)
    from arena.plugins import load_plugins

    plugins = load_plugins()
    sides = {
        "plain": lambda: plain_loop(tasks, args.episodes, args.seed, args.max_steps),
        "adapter": lambda: adapter_loop(tasks, args.episodes, args.seed, args.max_steps),
        "arena": lambda: arena_loop(tasks, args.episodes, args.seed, args.max_steps, plugins),
    }
    wall: dict[str, list[float]] = {k: [] for k in sides}
    cpu: dict[str, list[float]] = {k: [] for k in sides}
    outcomes: dict[str, dict] = {}
    for _ in range(args.repeats):
        for name, run in sides.items():
            c0 = time.process_time()
            seconds, outcomes[name] = run()
            cpu[name].append(time.process_time() - c0)
            wall[name].append(seconds)
    plain = outcomes["plain"]
    steps = sum(length for _, length in plain.values())
    print(f"tasks={len(tasks)} episodes/task={args.episodes} env_steps={steps} repeats={args.repeats}")
    for name in sides:
        same = sum(plain[k] == outcomes[name].get(k) for k in plain)
        print(
            f"{name}: wall_s={min(wall[name]):.3f} cpu_s={min(cpu[name]):.3f} "
            f"us_per_step={min(wall[name]) / steps * 1e6:.1f} same_outcomes={same}/{len(plain)}"
        )
    print(f"adapter_ratio={min(wall['adapter']) / min(wall['plain']):.3f}")
    print(f"ratio_cpu={min(cpu['arena']) / min(cpu['plain']):.3f}")
    print(f"ratio={min(wall['arena']) / min(wall['plain']):.3f}")


if __name__ == "__main__":
    main()
