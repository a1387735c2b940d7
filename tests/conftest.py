"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Ray tests never depend on a token in ~/.ray
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

HELLO = Path(__file__).resolve().parents[1] / "examples" / "arena-hello"


@pytest.fixture(scope="session")
def hello_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/arena-hello pip-installed (pyproject, entry point and all) into a private target dir.

    Put the returned folder on PYTHONPATH to use the plugin; installed once per session.
    """
    target = tmp_path_factory.mktemp("hello-site")
    src = tmp_path_factory.mktemp("hello-src") / "arena-hello"
    # build outside the repo: no build/ or egg-info left behind
    shutil.copytree(HELLO, src, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(src),
        ],
        check=True,
        timeout=180,
    )
    return target


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """One local Ray per module, started through arena's own RayRuntime (loopback only), without a token file.

    Runs that call ``arena.evaluate(backend="ray")`` inside the module use it as it is.
    """
    from arena.backends.ray_runtime import RayRuntime

    with RayRuntime(None, num_cpus=2) as runtime:
        yield runtime.ray
