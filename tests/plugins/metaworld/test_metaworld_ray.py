"""Meta-World on the ray backend (a real local Ray): the one-host episodes, renders and videos.

Each shard builds its Meta-World slots in the actor's own process (no
worker processes inside it); frames travel back only for the rows the
video reads, and the render count equals the one-host run's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import arena

pytestmark = pytest.mark.timeout(300)

OPTIONS = dict(episodes=1, max_steps=40, seed=2, videos=1, env_config={"image_height": 48, "image_width": 64})


def _outcomes(out: Path) -> list:
    from arena.results import RunDir

    return sorted((r.task, r.episode_index, r.seed, r.success, r.length) for r in RunDir(out).load_records())


def test_ray_shards_give_the_one_host_episodes_renders_and_videos(local_ray: Any, tmp_path: Path) -> None:
    local = arena.evaluate("expert", "metaworld/mt10", num_envs=2, output=tmp_path / "local", **OPTIONS)
    ray = arena.evaluate("expert", "metaworld/mt10", backend="ray", workers=2, output=tmp_path / "ray", **OPTIONS)
    assert _outcomes(tmp_path / "ray") == _outcomes(tmp_path / "local")
    assert any(o[3] for o in _outcomes(tmp_path / "local"))
    assert ray.totals["renders"] == local.totals["renders"] > 0
    assert ray.totals["env_steps"] == local.totals["env_steps"]
    videos = sorted(p.name for p in (tmp_path / "ray" / "videos").iterdir())
    assert videos == sorted(p.name for p in (tmp_path / "local" / "videos").iterdir()) and videos
