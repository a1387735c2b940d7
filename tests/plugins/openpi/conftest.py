"""Fixtures for the openpi plugin tests: policy servers in separate processes, loopback only."""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Iterator

import pytest

# The helper modules live next to this file; make them importable under any pytest import mode.
_HERE = str(pathlib.Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from openpi_test_servers import ServerFactory  # noqa: E402


@pytest.fixture
def servers(tmp_path: pathlib.Path) -> Iterator[ServerFactory]:
    factory = ServerFactory(tmp_path)
    yield factory
    factory.close()


@pytest.fixture(scope="module")
def module_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    factory = ServerFactory(tmp_path_factory.mktemp("openpi-servers"))
    yield factory
    factory.close()
