"""LIBERO like Meta-World on the rest of the loop: the ray backend (a real local Ray) and stages give the
one-host episodes, renders and videos; an interrupted run resumes without losing or repeating episodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from libero_testlib import SUITE, TASKS

import arena
from arena.results import RunDir

pytestmark = pytest.mark.timeout(300)

ENV = f"libero/{SUITE}/{TASKS[0]}"
OPTIONS = dict(
    episodes=2, max_steps=30, videos=1, env_config={"privileged": True, "image_size": 32, "cameras": ("agentview",)}
)


def outcomes(out: Path) -> list:
    return sorted((r.task, r.episode_index, r.seed, r.success, r.length) for r in RunDir(out).load_records())


def test_ray_shards_and_stages_give_the_one_host_episodes(local_ray: Any, tmp_path: Path) -> None:
    local = arena.evaluate("libero-expert", ENV, num_envs=1, output=tmp_path / "local", **OPTIONS)
    ray = arena.evaluate("libero-expert", ENV, backend="ray", workers=2, output=tmp_path / "ray", **OPTIONS)
    staged = arena.evaluate("libero-expert", ENV, num_envs=2, stages=2, output=tmp_path / "staged", **OPTIONS)
    assert outcomes(tmp_path / "ray") == outcomes(tmp_path / "local") == outcomes(tmp_path / "staged")
    assert ray.totals["env_steps"] == local.totals["env_steps"] == staged.totals["env_steps"]
    assert ray.totals["renders"] == local.totals["renders"] > 0  # the video's frames, both hosts alike
    assert sorted(p.name for p in (tmp_path / "ray" / "videos").iterdir()) == sorted(
        p.name for p in (tmp_path / "local" / "videos").iterdir()
    )


def test_a_run_resumes_with_nothing_lost_or_repeated(tmp_path: Path) -> None:
    out = tmp_path / "run"
    options = dict(max_steps=30, env_config={"privileged": True, "cameras": ()})
    arena.evaluate("libero-expert", ENV, episodes=3, output=out, **options)
    full = outcomes(out)
    lines = (out / "episodes.jsonl").read_text().splitlines(keepends=True)
    (out / "episodes.jsonl").write_text(lines[0])  # interrupted after one episode
    summary = arena.evaluate("libero-expert", ENV, episodes=3, resume=out, **options)
    assert summary.overall.episodes == 3 and outcomes(out) == full  # the same episodes, each once
