"""Fixtures for the Meta-World plugin tests (real MuJoCo, headless EGL rendering).

``MUJOCO_GL`` must be set before anything imports mujoco, hence before the
imports below.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pathlib  # noqa: E402
import sys  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

_HERE = str(pathlib.Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from arena_metaworld.config import MetaWorldConfig  # noqa: E402
from arena_metaworld.vector_env import MetaWorldVectorEnv  # noqa: E402

#: small images keep rendering cheap; the orientation test uses its own env at the default size
SMALL = MetaWorldConfig(cameras=("corner", "topview"), image_height=64, image_width=80)


@pytest.fixture(scope="session")
def single() -> Iterator[MetaWorldVectorEnv]:
    """One in-process slot over the MT10 tasks."""
    env = MetaWorldVectorEnv("mt10", SMALL, 1)
    yield env
    env.close()


@pytest.fixture(scope="session")
def pool() -> Iterator[MetaWorldVectorEnv]:
    """Three worker-process slots over the MT10 tasks."""
    env = MetaWorldVectorEnv("mt10", SMALL, 3)
    yield env
    env.close()
