"""Fixtures for the GR00T protocol tests: servers in separate processes on 127.0.0.1."""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest

SERVER_SCRIPT = Path(__file__).with_name("gr00t_test_server.py")

# Helper modules live next to this file; make them importable under any pytest import mode.
if str(SERVER_SCRIPT.parent) not in sys.path:
    sys.path.insert(0, str(SERVER_SCRIPT.parent))


@attrs.define
class ServerProcess:
    proc: subprocess.Popen
    port: int
    tag: str

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _start(args: list[str], tag: str, ready_timeout_s: float = 15.0) -> ServerProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT), "--tag", tag, *args],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + ready_timeout_s
    try:
        while time.monotonic() < deadline:
            if sel.select(timeout=deadline - time.monotonic()):
                line = proc.stdout.readline()
                if line.startswith("READY "):
                    return ServerProcess(proc, int(line.split()[1]), tag)
                if not line and proc.poll() is not None:
                    break
        proc.kill()
        proc.wait(timeout=5)
        proc.stdout.close()
        raise RuntimeError(f"test server {tag!r} did not start (exit code {proc.poll()})")
    finally:
        sel.close()


@pytest.fixture(scope="module")
def spawn_server() -> Iterator[Callable[..., ServerProcess]]:
    """`spawn_server(*args, tag=...)` starts gr00t_test_server.py; all are killed at module end."""
    started: list[ServerProcess] = []

    def spawn(*args: str, tag: str = "server") -> ServerProcess:
        sp = _start(list(args), tag)
        started.append(sp)
        return sp

    yield spawn
    for sp in started:
        sp.kill()


@pytest.fixture
def free_port() -> int:
    """A port nothing listens on right now (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
