"""Policy servers in separate processes for the openpi tests (loopback only)."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
START_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p)
    return env


class ServerProcess:
    """A policy server subprocess; ``port`` is where it listens."""

    def __init__(self, proc: subprocess.Popen, port: int, log_path: pathlib.Path) -> None:
        self.proc = proc
        self.port = port
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: the server gets no chance to close connections cleanly."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()


class ServerFactory:
    """Starts servers and guarantees they are killed at teardown."""

    def __init__(self, workdir: pathlib.Path) -> None:
        self.workdir = workdir
        self.procs: list[ServerProcess] = []

    def ours(
        self,
        *,
        port: int = 0,
        metadata: dict[str, Any] | None = None,
        policy_args: dict[str, Any] | None = None,
        api_key: str | None = None,
        max_message_bytes: int | None = None,
        concurrency: int = 1,
        policy: str = "openpi_test_policies:make_policy",
        debug_errors: bool = False,
    ) -> ServerProcess:
        """Our :class:`arena_openpi.server.OpenpiServer` via ``python -m arena_openpi.server``."""
        cmd = [
            sys.executable,
            "-m",
            "arena_openpi.server",
            "--policy",
            policy,
            "--policy-args",
            json.dumps(policy_args or {}),
            "--metadata",
            json.dumps(metadata or {}),
            "--port",
            str(port),
            "--concurrency",
            str(concurrency),
        ]
        if api_key is not None:
            cmd += ["--token", api_key]
        if max_message_bytes is not None:
            cmd += ["--max-message-bytes", str(max_message_bytes)]
        if debug_errors:
            cmd += ["--debug-errors"]
        return self._start_with_port_file(cmd, "server")

    def arena_serve(self, *args: str, timeout_s: float = 60.0) -> ServerProcess:
        """``arena-openpi serve ARGS`` (the reference server of any arena policy family)."""
        cmd = [sys.executable, "-m", "arena_openpi.cli", "serve", *args]
        if "--port" not in args:
            cmd += ["--port", "0"]
        return self._start_with_port_file(cmd, "serve", timeout_s)

    def _start_with_port_file(self, cmd: list[str], name: str, timeout_s: float = START_TIMEOUT_S) -> ServerProcess:
        """``cmd --port-file F --log-level WARNING``, ready once it has written its port to F."""
        tag = uuid.uuid4().hex[:8]
        port_file = self.workdir / f"port-{tag}"
        cmd = [*cmd, "--port-file", str(port_file), "--log-level", "WARNING"]
        server = self._start(cmd, f"{name}-{tag}.log", 0, port_file.exists, "server", timeout_s)
        server.port = int(port_file.read_text())
        return server

    def _start(
        self,
        cmd: list[str],
        log_name: str,
        port: int,
        ready: Callable[[], bool],
        what: str,
        timeout_s: float,
    ) -> ServerProcess:
        """Start ``cmd`` (output to ``log_name``), wait until ``ready()``; kill it and raise if it dies or times out."""
        log_path = self.workdir / log_name
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, env=_env(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        server = ServerProcess(proc, port, log_path)
        self.procs.append(server)
        deadline = time.monotonic() + timeout_s
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError(f"{what} did not start (rc={proc.poll()}):\n{server.log()}")
            time.sleep(0.02)
        return server

    def stock(
        self,
        *,
        port: int | None = None,
        metadata: dict[str, Any] | None = None,
        policy: str = "counting",
        policy_args: dict[str, Any] | None = None,
    ) -> ServerProcess:
        """openpi's own WebsocketPolicyServer (PyPI openpi-server); ready once /healthz answers."""
        from arena_openpi import healthz

        port = port or free_port()
        cmd = [
            sys.executable,
            str(HERE / "openpi_stock_server_proc.py"),
            "--port",
            str(port),
            "--metadata",
            json.dumps(metadata or {}),
            "--policy",
            policy,
            "--policy-args",
            json.dumps(policy_args or {}),
        ]

        def ready() -> bool:
            return bool(healthz("127.0.0.1", port, timeout_s=1.0))

        log_name = f"stock-{uuid.uuid4().hex[:8]}.log"
        return self._start(cmd, log_name, port, ready, "stock server", START_TIMEOUT_S)

    def close(self) -> None:
        for server in self.procs:
            server.kill()
