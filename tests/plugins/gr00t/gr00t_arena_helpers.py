"""Shared pieces of the GR00T policy-family tests: a goal-seeking policy, in-thread servers,
and `arena-gr00t serve` processes on 127.0.0.1 with bounded waits."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from arena.contract import ActionChunk, Observation
from arena.policy import Policy, PolicyDescription
from arena.remote.serving import ServedPolicy
from arena_gr00t import Gr00tServer
from arena_gr00t.serve import ServedGr00tHandler

HERE = Path(__file__).resolve().parent
STEP_SIZE = 0.1  # arena.builtins.debug_env


@attrs.define
class GoalConfig:
    action_horizon: int = 4


class GoalPolicy(Policy):
    """Deterministic policy for debug/*: open-loop chunk toward the goal; reads camera `top` too."""

    Config = GoalConfig

    def infer(self, observation: Observation, env_mask: np.ndarray) -> ActionChunk:
        rows = np.flatnonzero(env_mask)
        out = np.zeros((len(rows), self.config.action_horizon, 2), np.float32)
        for k, r in enumerate(rows):
            assert observation.images["top"][r].shape == (32, 32, 3)
            p = np.asarray(observation.state["position"][r], np.float32).copy()
            g = np.asarray(observation.state["goal"][r], np.float32)
            for j in range(self.config.action_horizon):
                a = np.clip((g - p) / np.float32(STEP_SIZE), -1.0, 1.0).astype(np.float32)
                out[k, j] = a
                p = np.clip(p + STEP_SIZE * a, 0.0, 1.0)
        return ActionChunk(out, observation.env_ids[rows])

    def describe(self) -> PolicyDescription:
        return PolicyDescription(
            family="goal",
            action_horizon=self.config.action_horizon,
            cameras={"top": None},
            state={"position": 2, "goal": 2},
            action_dim=2,
            uses_instruction=True,
        )


@contextmanager
def thread_server(
    policy: Any = GoalPolicy, env: str = "debug/reach", *, flat: bool = False, **policy_config: Any
) -> Iterator[tuple[Gr00tServer, ServedGr00tHandler]]:
    """The reference handler over ``policy`` for ``env``, served from a thread on a free port."""
    served = ServedPolicy(policy, env, policy_config or None, max_batch=8)
    handler = ServedGr00tHandler(served, flat=flat)
    server = Gr00tServer(handler, port=0, poll_interval_s=0.02)
    server.start_in_thread()
    try:
        yield server, handler
    finally:
        server.close()
        served.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _command() -> list[str]:
    script = Path(sys.executable).with_name("arena-gr00t")
    return [str(script)] if script.exists() else [sys.executable, "-m", "arena_gr00t.cli"]


@attrs.define
class ServeProcess:
    """An ``arena-gr00t serve`` process; its stderr goes to a file (no pipe to fill up)."""

    proc: subprocess.Popen
    port: int
    log_path: Path

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.log_path.unlink(missing_ok=True)

    def terminate(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=10)
        self.log_path.unlink(missing_ok=True)
        return code


def spawn_serve(
    *args: str, port: int | None = None, script: Path | None = None, env: dict[str, str] | None = None
) -> ServeProcess:
    """Start ``arena-gr00t serve ARGS --port PORT`` (or ``script serve ...``) without waiting."""
    port = port or free_port()
    fd, name = tempfile.mkstemp(prefix="gr00t-serve-", suffix=".log")
    cmd = ([sys.executable, str(script)] if script else _command()) + ["serve", *args, "--port", str(port)]
    with os.fdopen(fd, "w") as log_file:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    return ServeProcess(proc, port, Path(name))


def wait_ready(sp: ServeProcess, timeout_s: float = 30.0) -> ServeProcess:
    """Wait (bounded) until the server logs that it listens; kill it and raise otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if "GR00T server listening on" in sp.log():
            return sp
        if sp.proc.poll() is not None:
            break
        time.sleep(0.05)
    log = sp.log()
    sp.kill()
    raise RuntimeError(f"{' '.join(map(str, sp.proc.args))} did not start (exit {sp.proc.poll()}):\n{log}")


def start_serve(*args: str, **kw: Any) -> ServeProcess:
    return wait_ready(spawn_serve(*args, **kw))
