"""Start a server subprocess on a free loopback port and wait until it accepts (shared by the family tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import attrs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@attrs.define
class Served:
    proc: subprocess.Popen
    port: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start(cmd: list[str], port: int, *, env: dict[str, str] | None = None, timeout_s: float = 60.0) -> Served:
    """Run ``cmd`` (which listens on ``port``), returned once the port accepts connections."""
    fd, name = tempfile.mkstemp(prefix="served-", suffix=".log")
    with os.fdopen(fd, "w") as log_file:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )  # fmt: skip
    served = Served(proc, port, Path(name))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return served
        except OSError:
            time.sleep(0.1)
    log = served.log()
    served.kill()
    raise RuntimeError(f"{' '.join(cmd)} did not start (exit {proc.poll()}):\n{log}")
