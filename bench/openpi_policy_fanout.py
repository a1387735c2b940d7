"""Fan-out through the arena Policy: 8 envs need a chunk at once, served by 1 vs 4 openpi replicas.

Unlike ``openpi_fanout.py`` (raw OpenpiPool), this goes through ``OpenpiPolicy.infer``: the
translator (LIBERO mapping: two cameras rotated by 180 degrees, resized with padding when
the env renders another size, 8-d state, prompt), the pool's concurrent requests, and the
decoding of each reply into the (8, 10, 7) ActionChunk. The env is a LIBERO-like spec (arena
ships no LIBERO env); each replica sleeps a fixed 20 ms per inference and serves one request
at a time, like a stock openpi server. Both configurations use 8 connections in total.

    .venv/bin/python bench/openpi_policy_fanout.py [--rounds 100] [--latency-ms 20] [--image-size 224] [--stock]

Prints one line per configuration, the translation cost per round, and ``ratio=X``
(4-replica throughput over 1-replica throughput; ideal 4).
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import statistics
import sys
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from openpi_fanout import add_replica_arguments, replicas, server_label, time_rounds  # noqa: E402


def libero_like_spec(size: int):  # noqa: ANN201 - arena.contract.EnvSpec
    from arena.contract import ActionGroup, EnvSpec, Task

    return EnvSpec(
        name="libero-like/bench",
        embodiment="panda",
        cameras={"agentview": (size, size), "wrist": (size, size)},
        state_groups={"eef_pos": ("x", "y", "z"), "eef_axis_angle": ("a", "b", "c"), "gripper_qpos": ("l", "r")},
        action_groups=(
            ActionGroup("arm", ("dx", "dy", "dz", "da", "db", "dc"), low=[-1] * 6, high=[1] * 6),
            ActionGroup("gripper", ("g",), low=[-1], high=[1]),
        ),
        tasks=(Task("bowl", "put the black bowl on the plate"),),
        max_episode_steps=220,
    )


def observation(n: int, size: int):  # noqa: ANN201 - arena.contract.Observation
    from arena.contract import Observation

    rng = np.random.default_rng(0)
    return Observation(
        images={cam: rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8) for cam in ("agentview", "wrist")},
        state={
            "eef_pos": rng.standard_normal((n, 3)).astype(np.float32),
            "eef_axis_angle": rng.standard_normal((n, 3)).astype(np.float32),
            "gripper_qpos": rng.standard_normal((n, 2)).astype(np.float32),
        },
        instruction=["put the black bowl on the plate"] * n,
        env_ids=np.arange(n),
    )


def run_config(ports: list[int], envs: int, size: int, rounds: int, warmup: int) -> dict[str, float]:
    from arena_openpi.policy import OpenpiConfig, OpenpiPolicy

    config = OpenpiConfig(
        host=",".join(f"127.0.0.1:{p}" for p in ports),
        mapping="libero",
        connections_per_host=max(1, envs // len(ports)),
    )
    obs = observation(envs, size)
    mask = np.ones(envs, bool)
    with OpenpiPolicy(config, libero_like_spec(size), envs) as policy:
        desc = policy.describe()
        if desc.problems:
            raise SystemExit("preflight problems: " + "; ".join(desc.problems))
        for _ in range(warmup):
            policy.infer(obs, mask)
        assert policy.translator is not None
        encode_s = []
        for _ in range(10):
            t0 = time.perf_counter()
            policy.translator.encode(obs, np.arange(envs))
            encode_s.append(time.perf_counter() - t0)

        def one_round() -> None:
            chunk = policy.infer(obs, mask)
            assert chunk.actions.shape == (envs, 10, 7)

        total_s, round_ms = time_rounds(rounds, one_round)
        connections = len(policy.pool.connections) if policy.pool else 0
    return {
        "replicas": len(ports),
        "connections": connections,
        "envs_per_s": envs * rounds / total_s,
        **round_ms,
        "encode_ms_p50": statistics.median(encode_s) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", type=int, default=8, help="envs needing a chunk at once")
    add_replica_arguments(parser)
    parser.add_argument("--image-size", type=int, default=224, help="env render size (224: no resize needed)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    with replicas(args, "openpi-policy-fanout-") as ports:
        results = [
            run_config(ports[:1], args.envs, args.image_size, args.rounds, args.warmup),
            run_config(ports, args.envs, args.image_size, args.rounds, args.warmup),
        ]
    print(
        f"server={server_label(args.stock)!r} envs={args.envs} image_size={args.image_size} latency_ms={args.latency_ms} "
        f"rounds={args.rounds} (through OpenpiPolicy.infer, LIBERO mapping)"
    )
    for r in results:
        print(
            f"replicas={r['replicas']} connections={r['connections']} envs_per_s={r['envs_per_s']:.1f} "
            f"round_ms_p50={r['round_ms_p50']:.1f} round_ms_max={r['round_ms_max']:.1f} "
            f"translate_ms_p50={r['encode_ms_p50']:.2f}"
        )
    print(f"ratio={results[1]['envs_per_s'] / results[0]['envs_per_s']:.2f}")


if __name__ == "__main__":
    main()
