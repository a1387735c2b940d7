"""Renders per env step for a camera policy with chunked execution (target <= 1/8), and render cost.

A stand-in policy declares one camera in ``describe()`` and returns chunks of
8 zero actions (execution horizon 8); arena's evaluator should then ask the
env for an image only on the steps whose observation the policy will read:
one per chunk (plus the reset), never on the 7 steps in between.
Also times one 224x224 ``corner`` render by default (shadows, reflections and anti-aliasing
off), with --antialias, and with shadows and reflections on.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

import arena  # noqa: E402
import arena_metaworld  # noqa: E402, F401  (MUJOCO_GL before mujoco)
from arena.contract import ActionChunk, Observation  # noqa: E402
from arena.env import EpisodeSpec  # noqa: E402
from arena.policy import Policy, PolicyDescription  # noqa: E402
from arena_metaworld.config import MetaWorldConfig  # noqa: E402
from arena_metaworld.vector_env import MetaWorldVectorEnv  # noqa: E402

CAMERA = "corner"
HORIZON = 8


class ZeroChunkCameraPolicy(Policy):
    """Needs the ``corner`` camera; returns chunks of HORIZON zero actions."""

    def infer(self, observation: Observation, env_mask: np.ndarray) -> ActionChunk:
        rows = np.flatnonzero(env_mask)
        assert observation.images[CAMERA].shape[0] == observation.num_envs
        return ActionChunk(np.zeros((len(rows), HORIZON, self.env_spec.action_dim), np.float32), rows)

    def describe(self) -> PolicyDescription:
        return PolicyDescription(
            family="zero-camera",
            action_horizon=HORIZON,
            execution_horizon=HORIZON,
            cameras={CAMERA: None},
            action_dim=self.env_spec.action_dim,
        )


def render_ms(config: MetaWorldConfig, n: int = 30) -> float:
    env = MetaWorldVectorEnv("pick-place-v3", config, 1)
    try:
        env.reset([0], [EpisodeSpec("pick-place-v3", 0, 0)], np.ones(1, bool))  # creates the GL context
        t0 = time.perf_counter()
        for _ in range(n):
            env.observe([0], np.ones(1, bool))
        return (time.perf_counter() - t0) / n * 1e3
    finally:
        env.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="metaworld/mt10")
    ap.add_argument("--episodes", type=int, default=1, help="episodes per task")
    ap.add_argument("--max-steps", type=int, default=200)
    ap.add_argument("--num-envs", type=int, default=1)
    args = ap.parse_args()

    # arena.evaluate builds and closes the env itself: read its render counter when it is closed
    counts: list[int] = []
    close = MetaWorldVectorEnv.close

    def counting_close(self: MetaWorldVectorEnv) -> None:
        counts.append(self.render_count())
        close(self)

    MetaWorldVectorEnv.close = counting_close  # type: ignore[method-assign]
    t0 = time.perf_counter()
    summary = arena.evaluate(
        ZeroChunkCameraPolicy,
        args.env,
        episodes=args.episodes,
        max_steps=args.max_steps,
        num_envs=args.num_envs,
        env_config={"cameras": (CAMERA,)},
        write=False,
    )
    wall = time.perf_counter() - t0
    MetaWorldVectorEnv.close = close  # type: ignore[method-assign]
    steps = int(round(summary.overall.episodes * summary.overall.mean_length))
    renders = counts[0]
    print(f"env={args.env} episodes={summary.overall.episodes} env_steps={steps} renders={renders} wall_s={wall:.1f}")
    print(f"render_ms_224_default={render_ms(MetaWorldConfig(cameras=(CAMERA,))):.1f}")
    print(f"render_ms_224_antialias={render_ms(MetaWorldConfig(cameras=(CAMERA,), antialias=True)):.1f}")
    print(
        f"render_ms_224_shadows_reflections={render_ms(MetaWorldConfig(cameras=(CAMERA,), shadows=True, reflections=True)):.1f}"
    )
    resets = summary.overall.episodes  # each episode's first observation needs one image
    print(f"step_renders_per_step={(renders - resets) / steps:.4f} (renders after steps, reset images excluded)")
    print(f"renders_per_step={renders / steps:.4f} (target <= {1 / HORIZON:.4f})")


if __name__ == "__main__":
    main()
