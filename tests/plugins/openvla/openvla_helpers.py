"""Start ``arena-openvla serve`` subprocesses on free loopback ports and wait until they accept."""

from __future__ import annotations

import sys

from served_process import Served, free_port, start

__all__ = ["Served", "free_port", "serve"]


def serve(*args: str, env: dict[str, str] | None = None, timeout_s: float = 60.0) -> Served:
    """``arena-openvla serve ARGS --port PORT``, returned once the port accepts connections."""
    port = free_port()
    cmd = [sys.executable, "-m", "arena_openvla.cli", "serve", *args, "--port", str(port)]
    return start(cmd, port, env=env, timeout_s=timeout_s)
