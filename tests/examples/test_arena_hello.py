"""The third-party plugin from docs/writing-a-plugin.md, really installed and driven by the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "arena-hello"


@pytest.fixture(scope="module")
def installed(hello_site: Path) -> dict[str, str]:
    """The environment of an ``arena`` process that sees the pip-installed example (conftest ``hello_site``)."""
    assert list(hello_site.glob("arena_hello-*.dist-info")), "the example must install as a distribution"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(hello_site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _arena(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "arena.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def _eval_hello(env: dict[str, str], env_id: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return _arena(env, "eval", "--policy", "hello", "--env", env_id, *flags)


def test_plugin_is_listed_with_its_distribution(installed: dict[str, str]) -> None:
    out = _arena(installed, "plugins", "--json")
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["hello"]["distribution"] == "arena-hello"
    assert rows["hello"]["version"] == "0.1.0"
    assert rows["hello"]["hooks"] == ["arena_register_policies"]
    assert rows["hello"]["provides"] == ["policy:hello"]


def test_plugin_policy_runs_through_arena_eval(installed: dict[str, str], tmp_path: Path) -> None:
    run = tmp_path / "run"
    out = _eval_hello(installed, "debug/suite", "--episodes", "4", "--gain", "4", "--output", str(run))
    assert out.returncode == 0, out.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["overall"]["episodes"] == 8
    assert summary["overall"]["success_rate"] == 1.0  # the greedy policy always reaches the goal
    assert summary["config"]["policy_config"] == {"gain": 4.0}
    assert len((run / "episodes.jsonl").read_text().splitlines()) == 8


def test_plugin_flag_errors_name_the_flag(installed: dict[str, str], tmp_path: Path) -> None:
    out = _eval_hello(installed, "debug/reach", "--gain", "fast", "--output", str(tmp_path / "r"))
    assert out.returncode == 2
    assert "--gain: expected a number, got 'fast'" in out.stderr


def test_blocking_the_plugin_hides_it(installed: dict[str, str]) -> None:
    out = _arena(installed, "eval", "--plugin", "no:hello", "--policy", "hello", "--env", "debug/reach")
    assert out.returncode == 2
    assert "unknown policy 'hello'" in out.stderr


def test_docs_show_the_plugin_verbatim() -> None:
    """docs/writing-a-plugin.md must show exactly the files the test installs."""
    doc = (ROOT / "docs" / "writing-a-plugin.md").read_text()
    assert (EXAMPLE / "pyproject.toml").read_text() in doc
    assert (EXAMPLE / "src" / "arena_hello" / "plugin.py").read_text() in doc
