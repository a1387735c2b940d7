"""Ray for the backend tests: one local instance per module, on 127.0.0.1, without a token file.

``RAY_AUTH_MODE`` is set explicitly so the tests never depend on a token in
``~/.ray``; the instance is started through arena's own
:class:`~arena.backends.ray_runtime.RayRuntime` (loopback only), and runs
that call ``arena.evaluate(backend="ray")`` use it as it is.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    from arena.backends.ray_runtime import RayRuntime

    with RayRuntime(None, num_cpus=2) as runtime:
        yield runtime.ray
