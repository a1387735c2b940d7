"""A pool of worker processes, one Meta-World scene each, for ``num_envs > 1``.

Workers are started with multiprocessing's ``spawn`` context: a forked child
inherits the parent's GL/EGL state, and a fork-started worker that renders
after the parent created an EGL context hangs. Commands go out to every
involved worker before any reply is read, so workers step in parallel.

A worker that dies (killed, segfault) or stops answering within the timeout
is detected without hanging (``multiprocessing.connection.wait`` on the pipes
and the process sentinels, with a deadline), its request answered with an
error string, and the worker replaced by a fresh one.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import time
import weakref
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np

from arena_metaworld.config import MetaWorldConfig

log = logging.getLogger(__name__)

__all__ = ["WorkerPool", "Reply", "worker_main"]

#: ("ok", 39-d observation or None, success, {camera: image} or None) or ("error", message)
Reply = tuple

_JOIN_S = 5.0


def worker_main(conn: Connection, config: MetaWorldConfig) -> None:
    """Serve commands for one slot until ``close`` or until the parent goes away.

    Commands: ``("reset", task, seed, render)``, ``("step", action, render)``,
    ``("observe", render)``, ``("close",)``. Env exceptions are answered as
    ``("error", "Type: message")``; the worker keeps serving.
    """
    # Ctrl-C reaches the whole process group: the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from arena_metaworld.sim import MetaWorldSim  # imports mujoco after MUJOCO_GL is set (package __init__)

    sim = MetaWorldSim(config)
    images = {cam: np.zeros((config.image_height, config.image_width, 3), np.uint8) for cam in config.cameras}
    try:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break  # parent closed its end or died
            cmd = msg[0]
            if cmd == "close":
                break
            try:
                if cmd == "step":
                    obs, success = sim.step(msg[1])
                    render = msg[2]
                elif cmd == "reset":
                    obs, success, render = sim.reset(msg[1], msg[2]), False, msg[3]
                elif cmd == "observe":
                    obs, success, render = None, False, msg[1]
                else:
                    raise ValueError(f"unknown worker command {cmd!r}")
                if render:
                    sim.render_into(images)
                reply: Reply = ("ok", obs, success, images if render else None)
            except Exception as exc:  # noqa: BLE001 - every env failure is reported to the evaluator
                reply = ("error", f"{type(exc).__name__}: {exc}")
            conn.send(reply)
    finally:
        sim.close()
        conn.close()


class _Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self, ctx: Any, slot: int, config: MetaWorldConfig) -> None:
        self.slot = slot
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=worker_main, args=(child, config), name=f"arena-metaworld-{slot}", daemon=True)
        self.proc.start()
        child.close()  # so that the parent sees EOF when the worker dies

    def stop(self, graceful: bool = True) -> None:
        """Stop the worker within a bounded time.

        Graceful: a ``close`` command, then SIGTERM, then SIGKILL, each after a
        bounded join. Not graceful (a dead or hung worker): SIGKILL at once; a
        hung, e.g. stopped, process would not act on anything milder.
        """
        if graceful and self.proc.is_alive():
            try:
                self.conn.send(("close",))
            except (OSError, ValueError):
                pass
            self.proc.join(_JOIN_S)
            if self.proc.is_alive():
                self.proc.terminate()
                self.proc.join(_JOIN_S)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(_JOIN_S)
        self.conn.close()


def _death_reason(proc: Any) -> str:
    proc.join(_JOIN_S)
    code = proc.exitcode
    if code is not None and code < 0:
        try:
            return f"worker died: exit code {code} ({signal.Signals(-code).name})"
        except ValueError:
            pass
    return f"worker died: exit code {code}"


def _stop_all(workers: list[_Worker]) -> None:
    for w in workers:
        w.stop()


class WorkerPool:
    """``num`` worker processes; slot ``i`` is served by worker ``i``."""

    def __init__(self, num: int, config: MetaWorldConfig) -> None:
        self.config = config
        self._ctx = mp.get_context("spawn")
        self.workers = [_Worker(self._ctx, i, config) for i in range(num)]
        self.replaced = 0
        # workers never outlive the pool, even if close() is forgotten
        self._finalizer = weakref.finalize(self, _stop_all, self.workers)

    def pid(self, slot: int) -> int | None:
        return self.workers[slot].proc.pid

    def _replace(self, slot: int, graceful: bool = False) -> None:
        self.workers[slot].stop(graceful=graceful)
        self.workers[slot] = _Worker(self._ctx, slot, self.config)
        self.replaced += 1
        log.warning("metaworld worker of slot %d replaced by pid %s", slot, self.workers[slot].proc.pid)

    def request(self, slots: Sequence[int], messages: Sequence[tuple]) -> list[Reply | str]:
        """Send ``messages[k]`` to the worker of ``slots[k]`` (all first), then gather the replies.

        Returns the reply per slot, or a string saying why the worker could
        not answer (it died or timed out; it has been replaced).
        """
        results: list[Reply | str | None] = [None] * len(slots)
        pending: dict[Any, int] = {}  # conn -> k
        for k, (slot, msg) in enumerate(zip(slots, messages)):
            worker = self.workers[slot]
            try:
                worker.conn.send(msg)
                pending[worker.conn] = k
            except (OSError, ValueError):
                results[k] = _death_reason(worker.proc)
                self._replace(slot)
        deadline = time.monotonic() + self.config.worker_timeout_s
        while pending:
            sentinels = {self.workers[slots[k]].proc.sentinel: conn for conn, k in pending.items()}
            ready = wait([*pending, *sentinels], timeout=max(0.0, deadline - time.monotonic()))
            if not ready:
                for k in pending.values():
                    results[k] = f"worker timed out: no answer within {self.config.worker_timeout_s:g} s"
                    self._replace(slots[k])
                break
            for obj in ready:
                conn = sentinels.get(obj, obj)
                k = pending.get(conn)
                if k is None:
                    continue  # both the pipe and the sentinel of this worker were ready
                worker = self.workers[slots[k]]
                try:
                    if obj is not conn and not conn.poll(0):
                        raise EOFError
                    results[k] = conn.recv()
                except (EOFError, OSError):
                    results[k] = _death_reason(worker.proc)
                    self._replace(slots[k])
                del pending[conn]
        return results  # type: ignore[return-value]

    def close(self) -> None:
        self._finalizer()
