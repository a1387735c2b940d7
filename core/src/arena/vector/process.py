"""Slots stepped in spawned worker processes, one simulator each, observations in shared memory.

Workers are started with multiprocessing's ``spawn`` context: a forked child
inherits the parent's GL/EGL state, and a fork-started worker that renders
after the parent created an EGL context hangs. The simulator is built inside
the worker by a picklable factory. Each worker maps the parent's shared
:class:`~arena.vector.buffers.SlotBuffers` and writes its slot's state and
images there, so a command's reply is a few numbers, and a whole action
chunk is one round trip.

A worker that dies (killed, segfault) or stops answering within the timeout
is detected without hanging (``multiprocessing.connection.wait`` on the pipes
and the process sentinels, with a deadline); its slot's reply says LOST
(steps ``-1``) and the worker is replaced by a fresh one. Losing a worker is
an infrastructure fault, not an env failure: the loop re-runs the episode.
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import os
import select
import signal
import time
import weakref
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from arena.vector.buffers import SlotBuffers, SlotLayout
from arena.vector.simulator import Reply, SimulatorFactory, execute
from arena.vector.slots import SlotRunner, Ticket

log = logging.getLogger(__name__)

__all__ = ["ProcessSlots", "worker_main", "LOST"]

#: the steps value of a reply whose worker was lost
LOST = -1

_JOIN_S = 5.0


def worker_main(
    conn: Connection, factory: SimulatorFactory, shm_name: str, layout: SlotLayout, slot: int, threads: int = 0
) -> None:
    """Serve commands for one slot until ``("close",)`` or until the parent goes away.

    ``threads``: the render threads each worker may use (cores / workers), unless
    the user set ``LP_NUM_THREADS``.
    """
    # Ctrl-C reaches the whole process group: the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if threads:  # software GL (Mesa llvmpipe) would start one render thread per core in every worker
        os.environ.setdefault("LP_NUM_THREADS", str(threads))
    buffers = SlotBuffers(layout, name=shm_name)
    state, images = buffers.row(slot)
    actions = buffers.actions[slot]
    sim = factory()
    try:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break  # parent closed its end or died
            if msg[0] == "close":
                break
            conn.send(execute(sim, msg, state, images, actions))
    finally:
        sim.close()
        conn.close()
        del state, images, actions
        buffers.close()


class _Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(
        self, ctx: Any, slot: int, factory: SimulatorFactory, buffers: SlotBuffers, label: str, n: int = 1
    ) -> None:
        self.slot = slot
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(
            target=worker_main,
            args=(child, factory, buffers.name, buffers.layout, slot, max(1, (os.cpu_count() or 1) // n)),
            name=f"arena-{label}-{slot}",
            daemon=True,
        )
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


def _readable(conns: Sequence[Connection], timeout: float | None) -> list[Connection]:
    """The pipes of ``conns`` with a reply (or EOF) waiting, after at most ``timeout`` seconds.

    One ``select`` call for all of them: ``Connection.poll`` builds a selector per call, which
    cost more CPU than the step itself at several polls per step.
    """
    if not conns:
        return []
    try:
        return select.select(conns, [], [], timeout)[0]
    except (OSError, ValueError):  # a closed pipe: let the receiver report it
        return list(conns)


def _stop_all(workers: list[_Worker], buffers: SlotBuffers) -> None:
    for w in workers:
        w.stop()
    buffers.close()


class ProcessSlots(SlotRunner):
    """One spawned worker per slot; slot ``i`` is served by worker ``i``."""

    concurrent = True

    def __init__(
        self, factory: SimulatorFactory, layout: SlotLayout, timeout_s: float = 120.0, label: str = "sim"
    ) -> None:
        self.factory = factory
        self.timeout_s = timeout_s
        self.label = label
        self.buffers = SlotBuffers(layout, shared=True)
        self._ctx = mp.get_context("spawn")
        n = layout.num_slots
        self.workers = [_Worker(self._ctx, i, factory, self.buffers, label, n) for i in range(n)]
        self.replaced = 0
        # workers and the shared block never outlive the runner, even if close() is forgotten
        self._finalizer = weakref.finalize(self, _stop_all, self.workers, self.buffers)

    def pid(self, slot: int) -> int | None:
        return self.workers[slot].proc.pid

    def _replace(self, slot: int, graceful: bool = False) -> None:
        self.workers[slot].stop(graceful=graceful)
        self.workers[slot] = _Worker(self._ctx, slot, self.factory, self.buffers, self.label, len(self.workers))
        self.replaced += 1
        log.warning("%s worker of slot %d replaced by pid %s", self.label, slot, self.workers[slot].proc.pid)

    def send(self, slots: Sequence[int], commands: Sequence[tuple[Any, ...]]) -> Ticket:
        ticket = Ticket(slots, commands, time.monotonic() + self.timeout_s)
        for k, (slot, msg) in enumerate(zip(ticket.slots, ticket.commands)):
            worker = self.workers[slot]
            try:
                worker.conn.send(msg)
                ticket.pending[worker.conn] = k
            except (OSError, ValueError):
                ticket.replies[k] = (False, LOST, False, _death_reason(worker.proc), 0)
                self._replace(slot)
        return ticket

    def _receive(self, ticket: Ticket, conn: Connection) -> None:
        """Take the reply waiting on ``conn`` (or the worker's death) into ``ticket``."""
        k = ticket.pending.pop(conn)
        try:
            ticket.replies[k] = conn.recv()
        except (EOFError, OSError):
            ticket.replies[k] = (False, LOST, False, _death_reason(self.workers[ticket.slots[k]].proc), 0)
            self._replace(ticket.slots[k])

    def _expire(self, ticket: Ticket) -> None:
        """The deadline passed: the slots still silent are hung; their workers are replaced."""
        for conn in list(ticket.pending):
            k = ticket.pending.pop(conn)
            ticket.replies[k] = (False, LOST, False, f"worker timed out: no answer within {self.timeout_s:g} s", 0)
            self._replace(ticket.slots[k])

    def ready(self, ticket: Ticket) -> bool:
        """Take the replies that arrived; True when none is missing (a hung slot's past its deadline)."""
        if ticket.pending:
            for conn in _readable(list(ticket.pending), 0):
                self._receive(ticket, conn)
        return self._settled(ticket)

    def _settled(self, ticket: Ticket) -> bool:
        """Complete, or expired now; reads no pipe."""
        if ticket.pending and time.monotonic() >= ticket.deadline:
            self._expire(ticket)
        return not ticket.pending

    def wait(self, tickets: Sequence[Ticket], timeout: float | None) -> None:
        """Until one ticket is complete (or past its deadline) or ``timeout`` passed; never longer than a deadline.

        One ``select`` per wake-up: the replies it finds are taken at once (a select per ticket
        and wake-up cost more CPU than the step of a state-only slot).
        """
        end = math.inf if timeout is None else time.monotonic() + timeout
        while not any(self._settled(t) for t in tickets):
            now = time.monotonic()
            if now >= end:
                return
            owner = {conn: t for t in tickets for conn in t.pending}
            soonest = min(end, *(t.deadline for t in tickets if t.pending))
            for conn in _readable(list(owner), max(0.0, soonest - now)):  # EOF: a death
                self._receive(owner[conn], conn)

    def gather(self, ticket: Ticket) -> list[Reply]:
        """Wait for every reply of ``ticket``; dead or hung workers answer LOST and are replaced.

        Each worker holds the only other end of its pipe, so a worker that
        dies makes its pipe readable at EOF: waiting on the pipes against the
        ticket's deadline (``timeout_s`` after sending) detects death and hangs alike.
        """
        while not self._settled(ticket):
            for conn in _readable(list(ticket.pending), max(0.0, ticket.deadline - time.monotonic())):
                self._receive(ticket, conn)
        return ticket.replies  # type: ignore[return-value]

    def close(self) -> None:
        self._finalizer()
