"""Concurrent requests over server replicas: one observation per request, or a batch split.

A protocol without a batch form (openpi, OpenVLA) serves N envs that need an action at the
same moment as N requests in flight, on several connections to several replicas
(:meth:`ReplicaPool.submit`). A batched protocol (GR00T) splits one batch into contiguous
row ranges, one per live replica, answered concurrently (:meth:`ReplicaPool.submit_split`). :class:`ReplicaPool` runs
one thread per connection; a request goes to an idle connection of the live replica with
the fewest requests in flight (so a small burst is spread over all replicas), or waits for
the first connection to free up. A request whose replica fails with a connection problem
(after the connection's own retries: one reconnect window) is retried once on another live
replica, and that replica is marked down for good: later requests do not each wait out a
window on it. When no replica is left, requests fail at once naming every replica's cause.
A timeout is the request's failure, not the replica's (a slow answer is not a dead server).
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from arena.futures import gather
from arena.remote.errors import RemoteAuthError, RemoteConnectionError
from arena.remote.hosts import HostPort, host_label

__all__ = ["ReplicaPool", "split_ranges"]

log = logging.getLogger(__name__)
C = TypeVar("C")


def split_ranges(total: int, parts: int) -> list[tuple[int, int]]:
    """Contiguous ``[start, stop)`` ranges covering ``total`` rows in at most ``parts`` non-empty pieces.

    Earlier pieces get the extra row when ``total`` does not divide evenly (like np.array_split).
    """
    if total < 0 or parts < 1:
        raise ValueError(f"need total >= 0 and parts >= 1, got total={total}, parts={parts}")
    parts = min(parts, total) or 1
    base, extra = divmod(total, parts)
    ranges, start = [], 0
    for i in range(parts):
        stop = start + base + (1 if i < extra else 0)
        ranges.append((start, stop))
        start = stop
    return ranges


class _Job:
    __slots__ = ("request", "future", "tried")

    def __init__(self, request: Callable[[Any], Any], future: concurrent.futures.Future) -> None:
        self.request = request
        self.future = future
        self.tried: set[int] = set()


class _Conn:
    __slots__ = ("replica", "conn", "index", "busy", "wake", "job")

    def __init__(self, replica: int, conn: Any, index: int) -> None:
        self.replica, self.conn, self.index = replica, conn, index
        self.busy = False
        self.wake = threading.Event()
        self.job: _Job | None = None


class ReplicaPool(Generic[C]):
    """``per_replica`` connections to each of ``replicas``, built by ``connect(host, port)``.

    Every connection is opened (in parallel) before the constructor returns; if one cannot
    be, the pool closes what it opened and raises. ``request(conn)`` callables run on the
    connection's thread; their result or exception lands in the returned future.
    """

    def __init__(
        self,
        replicas: Sequence[HostPort],
        connect: Callable[[str, int], C],
        per_replica: int = 1,
        failover: bool = True,
        close: Callable[[C], None] = lambda c: c.close(),
        name: str = "remote",
        error: type[RemoteConnectionError] = RemoteConnectionError,
    ) -> None:
        if not replicas:
            raise ValueError("ReplicaPool needs at least one replica")
        if per_replica < 1:
            raise ValueError(f"per_replica must be >= 1, got {per_replica}")
        self.replicas = list(replicas)
        self.labels = [host_label(h, p) for h, p in self.replicas]
        self.failover = failover
        self.name = name
        self._error = error  # the family's connection error class, for the pool's own errors
        self._rr = 0
        self._close_conn = close
        self._lock = threading.Lock()
        self._pending: deque[_Job] = deque()
        self._in_flight = [0] * len(self.replicas)
        self.down: dict[int, str] = {}
        self._closed = False
        targets = [(r, h, p) for r, (h, p) in enumerate(self.replicas) for _ in range(per_replica)]
        with concurrent.futures.ThreadPoolExecutor(len(targets)) as ex:
            opened = [ex.submit(connect, h, p) for _, h, p in targets]
            self._conns: list[_Conn] = []
            errors = []
            for (r, _, _), fut in zip(targets, opened):
                try:
                    self._conns.append(_Conn(r, fut.result(), len(self._conns)))
                except Exception as exc:  # noqa: BLE001 - reported together below
                    errors.append(f"{self.labels[r]}: {exc}")
        if errors:
            for c in self._conns:
                self._quiet_close(c.conn)
            raise error(f"{name}: could not open {len(errors)} of {len(targets)} connection(s): {'; '.join(errors)}")
        self._threads = [
            threading.Thread(target=self._run, args=(c,), name=f"{name}-pool-{i}", daemon=True)
            for i, c in enumerate(self._conns)
        ]
        for t in self._threads:
            t.start()

    # -- dispatch --------------------------------------------------------------------------------
    def submit(self, request: Callable[[C], Any]) -> concurrent.futures.Future:
        """Run ``request(conn)`` on a free connection of the least-loaded live replica."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("ReplicaPool is closed")
            self._dispatch(_Job(request, future))
        return future

    def submit_split(self, total: int, piece: Callable[[C, int, int], Any]) -> concurrent.futures.Future:
        """A batch of ``total`` rows as one contiguous piece per live replica: ``piece(conn, start, stop)``.

        The future resolves to the pieces' ``(start, stop, result)`` in row order, once every
        piece is back (the first failure in row order otherwise). A piece whose replica is lost
        runs again on another live one, like any request.
        """
        with self._lock:
            live = sum(1 for r in range(len(self.replicas)) if r not in self.down) or 1
        ranges = split_ranges(total, live)
        futures = [self.submit(lambda conn, a=a, b=b: piece(conn, a, b)) for a, b in ranges]
        return gather(futures, lambda results: [(a, b, r) for (a, b), r in zip(ranges, results)])

    def _dispatch(self, job: _Job) -> None:
        """Hand ``job`` to an idle connection, or queue it (lock held)."""
        live = [r for r in range(len(self.replicas)) if r not in self.down and r not in job.tried]
        if not live:
            job.future.set_exception(self._all_down())
            return
        idle = [c for c in self._conns if not c.busy and c.replica in live]
        if not idle:
            self._pending.append(job)
            return
        n = len(self._conns)
        # least in-flight replica first; ties broken round-robin, so sequential requests rotate too
        conn = min(idle, key=lambda c: (self._in_flight[c.replica], (c.index - self._rr) % n))
        self._rr = (conn.index + 1) % n
        conn.busy, conn.job = True, job
        self._in_flight[conn.replica] += 1
        conn.wake.set()

    def _all_down(self) -> RemoteConnectionError:
        causes = "; ".join(f"{self.labels[r]}: {why}" for r, why in sorted(self.down.items()))
        return self._error(f"{self.name}: no server replica left: {causes or 'every replica was tried'}")

    @property
    def connections(self) -> list[Any]:
        """Every open connection, replica by replica."""
        return [c.conn for c in self._conns]

    def _run(self, conn: _Conn) -> None:
        while True:
            conn.wake.wait()
            conn.wake.clear()
            job = conn.job
            if job is None:  # closed
                return
            try:
                result = job.request(conn.conn)
            except (RemoteAuthError, TimeoutError) as exc:  # a refusal, or a slow answer: not a dead replica
                self._done(conn, job, exc=exc)
            except ConnectionError as exc:
                self._lost(conn, job, exc)
            except BaseException as exc:  # noqa: BLE001 - the caller's future carries it
                self._done(conn, job, exc=exc)
            else:
                self._done(conn, job, result=result)

    def _done(self, conn: _Conn, job: _Job, result: Any = None, exc: BaseException | None = None) -> None:
        with self._lock:
            self._free(conn)
        if exc is not None:
            job.future.set_exception(exc)
        else:
            job.future.set_result(result)

    def _lost(self, conn: _Conn, job: _Job, exc: BaseException) -> None:
        """A connection problem outlived the connection's retries: the replica is down."""
        with self._lock:
            r = conn.replica
            if r not in self.down:
                self.down[r] = str(exc)
                log.warning("replica %s marked down: %s", self.labels[r], exc)
            job.tried.add(r)
            self._free(conn)
            if self.failover and any(x not in self.down for x in range(len(self.replicas))):
                self._dispatch(job)
                return
        job.future.set_exception(exc)

    def _free(self, conn: _Conn) -> None:
        """Mark ``conn`` idle and give it the next queued job it may take (lock held)."""
        self._in_flight[conn.replica] -= 1
        conn.busy, conn.job = False, None
        if self._closed:
            conn.wake.set()  # no job: the thread ends
            return
        if conn.replica in self.down:
            # its queued jobs go elsewhere; fail the ones no live replica can take
            for job in list(self._pending):
                if not any(r not in self.down and r not in job.tried for r in range(len(self.replicas))):
                    self._pending.remove(job)
                    job.future.set_exception(self._all_down())
            return
        for job in list(self._pending):
            if conn.replica not in job.tried:
                self._pending.remove(job)
                conn.busy, conn.job = True, job
                self._in_flight[conn.replica] += 1
                conn.wake.set()
                return

    # -- lifetime --------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for job in self._pending:
                job.future.set_exception(RuntimeError("ReplicaPool closed"))
            self._pending.clear()
            for c in self._conns:
                if not c.busy:
                    c.wake.set()  # no job: the thread ends; busy ones end after their request
        for c, t in zip(self._conns, self._threads):
            t.join(30.0)
            self._quiet_close(c.conn)

    def _quiet_close(self, conn: Any) -> None:
        try:
            self._close_conn(conn)
        except Exception:  # noqa: BLE001 - closing one must not keep the others open
            log.debug("closing a connection failed", exc_info=True)

    def __enter__(self) -> ReplicaPool[C]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
