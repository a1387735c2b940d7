"""Fixtures of the arena-core tests.

Every test runs with only the built-in plugins (``ARENA_PLUGINS`` names no
installed plugin), so the core is tested on its own whatever other arena
plugins are installed in the environment; tests that exercise third-party
plugins install fake distributions with real entry points (``fake_dists``).
"""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Iterator

import pytest

# The helper module lives next to this file; make it importable under any pytest import mode.
_HERE = str(pathlib.Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from arena_core_testlib import ONLY_BUILTINS, FakeDists  # noqa: E402

import arena.plugins  # noqa: E402
from arena.builtins.debug_env import DebugVectorEnv  # noqa: E402


@pytest.fixture(autouse=True)
def _only_builtin_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ARENA_PLUGINS", ONLY_BUILTINS)
    yield
    arena.plugins.reset_entry_point_cache()


@pytest.fixture
def plugins() -> arena.plugins.Plugins:
    """Freshly loaded plugins (built-ins only)."""
    return arena.plugins.load_plugins()


@pytest.fixture
def fake_dists(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDists]:
    """Install fake distributions with ``arena`` entry points into a folder put on sys.path."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    dists = FakeDists(root)
    yield dists
    dists.cleanup()
    arena.plugins.reset_entry_point_cache()


@pytest.fixture
def debug_envs(monkeypatch: pytest.MonkeyPatch) -> list[DebugVectorEnv]:
    """Every DebugVectorEnv built during the test (to read ``render_count()`` after ``arena.evaluate``)."""
    made: list[DebugVectorEnv] = []
    original = DebugVectorEnv.__init__

    def init(self: DebugVectorEnv, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(DebugVectorEnv, "__init__", init)
    return made
