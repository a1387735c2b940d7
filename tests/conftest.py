"""Fixtures shared by every test folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
