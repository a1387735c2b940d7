"""Concurrent inference over a pool of openpi connections, spread over server replicas.

openpi has no batch request and a stock server runs one inference at a time, so the way to
serve N environments that need an action chunk at the same moment is N requests in flight
on N connections, to several replicas. :class:`OpenpiPool` owns one worker thread per
connection; each connection carries one request at a time; a request goes to an idle
connection of the replica with the fewest requests in flight, so that a small burst is
spread over all replicas instead of queueing on one.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from arena.remote import hosts as _hosts
from arena.remote.hosts import HostSpec
from arena_openpi.wire.client import DEFAULT_PORT, OpenpiClient, _endpoint
from arena_openpi.wire.errors import OpenpiAuthError, OpenpiConnectionError, OpenpiTimeoutError

__all__ = ["HostSpec", "OpenpiPool", "parse_hosts"]

logger = logging.getLogger(__name__)

ClientFactory = Callable[[str, int], OpenpiClient]


def parse_hosts(spec: HostSpec, default_port: int = DEFAULT_PORT) -> list[tuple[str, int]]:
    """``"a:8000,b:8001"``, ``"gpu-box"`` (port ``default_port``), ``"[::1]:8000"`` or a list of
    such strings / ``(host, port)`` tuples -> ``[(host, port), ...]`` (the kit's grammar).

    Raises ``ValueError`` naming the offending entry. Duplicates are kept: listing a host
    twice is a way to weight it.
    """
    return _hosts.parse_hosts(spec, default_port)


@attrs.define(eq=False)
class _Slot:
    """One connection and the replica it belongs to."""

    client: OpenpiClient
    host_index: int
    index: int
    busy: bool = False


@attrs.define(eq=False)
class _Job:
    obs: Mapping[str, Any]
    future: concurrent.futures.Future


class OpenpiPool:
    """``connections_per_host`` connections to each replica in ``hosts``; requests run concurrently.

    All connections are opened (in parallel) at construction; if any replica is unreachable
    the pool closes what it opened and raises, so a misconfigured host list fails at
    preflight rather than mid-evaluation. Later connection losses are handled by each
    :class:`OpenpiClient` (reconnect + retry). With ``failover=True`` a request whose replica
    stays unreachable is retried once on another replica. A replica on which a request spent a
    whole reconnect window and failed is marked down for good: later requests fail over, or
    fail at once when no replica is left, instead of each waiting out its own window.

    ``client_kwargs`` are passed to every :class:`OpenpiClient` (``api_key``, ``timeout_s``, ...).
    """

    def __init__(
        self,
        hosts: HostSpec,
        connections_per_host: int = 1,
        *,
        failover: bool = True,
        client_factory: ClientFactory | None = None,
        **client_kwargs: Any,
    ) -> None:
        if connections_per_host < 1:
            raise ValueError(f"connections_per_host must be >= 1, got {connections_per_host}")
        self.endpoints: list[tuple[str, int]] = parse_hosts(hosts)
        self.connections_per_host = connections_per_host
        self._failover = failover and len(self.endpoints) > 1
        factory = client_factory or (lambda host, port: OpenpiClient(host, port, **client_kwargs))

        self._cond = threading.Condition()
        self._in_flight = [0] * len(self.endpoints)
        #: replicas found dead: a request spent a whole reconnect window on them and failed; later
        #: requests do not wait another window each, they fail over or fail at once
        self._dead: list[BaseException | None] = [None] * len(self.endpoints)
        self._rr = 0
        self._closed = False
        self._slots = self._open_all(factory)
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._workers = [
            threading.Thread(target=self._work, name=f"openpi-pool-{i}", daemon=True)  # daemon: never block exit
            for i in range(len(self._slots))
        ]
        for worker in self._workers:
            worker.start()
        logger.info(
            "openpi pool: %d connection(s) to %s",
            len(self._slots),
            ", ".join(_endpoint(h, p) for h, p in self.endpoints),
        )

    # ------------------------------------------------------------------ public API

    @property
    def size(self) -> int:
        """Total number of connections = maximum requests in flight."""
        return len(self._slots)

    @property
    def num_reconnects(self) -> int:
        """Connections reopened after a loss, over all replicas (diagnostics, tests)."""
        return sum(slot.client.num_reconnects for slot in self._slots)

    @property
    def metadata(self) -> dict[str, Any]:
        """Metadata of the first replica (replicas of one deployment serve the same model)."""
        return self._slots[0].client.metadata

    def submit(self, obs: Mapping[str, Any]) -> concurrent.futures.Future:
        """Queue one observation; the future resolves to its result map."""
        if self._closed:
            raise OpenpiConnectionError("pool is closed")
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._jobs.put(_Job(obs, future))
        return future

    def infer(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        """One observation through the pool (blocking)."""
        return self.submit(obs).result()

    def infer_many(
        self,
        observations: Sequence[Mapping[str, Any]],
        *,
        return_exceptions: bool = False,
        timeout_s: float | None = None,
    ) -> list[Any]:
        """Infer all observations concurrently; results come back in input order.

        Waits for every request to finish (so no request is left running on return), then
        raises the first failure in input order, unless ``return_exceptions`` puts the
        exceptions in the list instead. ``timeout_s`` bounds the wait for the whole batch
        (:class:`OpenpiTimeoutError`); per-request limits are the clients' ``timeout_s``.
        """
        futures = [self.submit(obs) for obs in observations]
        done, not_done = concurrent.futures.wait(futures, timeout=timeout_s)
        if not_done:
            for future in not_done:
                future.cancel()
            raise OpenpiTimeoutError(
                f"{len(not_done)} of {len(futures)} openpi requests unfinished after {timeout_s}s "
                "(queued ones were cancelled; running ones finish in the background)"
            )
        results: list[Any] = []
        for future in futures:
            exc = future.exception()
            if exc is not None and not return_exceptions:
                raise exc
            results.append(exc if exc is not None else future.result())
        return results

    def close(self) -> None:
        """Close every connection and stop the workers; queued requests are cancelled."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        for _ in self._workers:
            self._jobs.put(None)
        for slot in self._slots:
            slot.client.close()
        while True:  # cancel requests nobody will pick up
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.future.cancel()

    def __enter__(self) -> OpenpiPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _open_all(self, factory: ClientFactory) -> list[_Slot]:
        # Interleave replicas so that the slot list itself is balanced.
        plan = [
            (i, host, port) for _ in range(self.connections_per_host) for i, (host, port) in enumerate(self.endpoints)
        ]
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(32, len(plan))) as executor:
            futures = [executor.submit(factory, host, port) for _, host, port in plan]
            concurrent.futures.wait(futures)
        slots: list[_Slot] = []
        errors: list[tuple[str, BaseException]] = []
        for (host_index, host, port), future in zip(plan, futures, strict=True):
            exc = future.exception()
            if exc is None:
                slots.append(_Slot(future.result(), host_index, len(slots)))
            else:
                errors.append((_endpoint(host, port), exc))
        if errors:
            for slot in slots:
                slot.client.close()
            where, first = errors[0]
            failed = sorted({w for w, _ in errors})
            raise OpenpiConnectionError(
                f"openpi pool: could not open {len(errors)} of {len(plan)} connection(s) "
                f"(failed replicas: {', '.join(failed)}); first error from {where}: {first}"
            ) from first
        return slots

    def _acquire(self, exclude: set[int]) -> _Slot | None:
        """Idle connection on the least-loaded live replica not in ``exclude`` (raises when all are down)."""
        with self._cond:
            while True:
                if self._closed:
                    return None
                candidates = [i for i in range(len(self.endpoints)) if i not in exclude]
                if not candidates:
                    return None
                alive = [i for i in candidates if self._dead[i] is None]
                if not alive:
                    dead = self._dead[candidates[0]]
                    assert dead is not None
                    raise OpenpiConnectionError(
                        f"openpi replica(s) {', '.join(_endpoint(*self.endpoints[i]) for i in candidates)} "
                        f"down (no reconnect within the deadline): {dead}"
                    ) from dead
                idle = [s for s in self._slots if not s.busy and s.host_index in alive]
                if idle:
                    n = len(self._slots)
                    # least in-flight replica first; ties broken round-robin so bursts rotate
                    best = min(idle, key=lambda s: (self._in_flight[s.host_index], (s.index - self._rr) % n))
                    self._rr = (best.index + 1) % n
                    best.busy = True
                    self._in_flight[best.host_index] += 1
                    return best
                self._cond.wait()  # a connection is released or a replica goes down

    def _release(self, slot: _Slot) -> None:
        with self._cond:
            slot.busy = False
            self._in_flight[slot.host_index] -= 1
            self._cond.notify()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if not job.future.set_running_or_notify_cancel():
                continue
            try:
                job.future.set_result(self._run(job.obs))
            except BaseException as exc:  # the caller sees it through the future
                job.future.set_exception(exc)

    def _run(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        tried: set[int] = set()
        while True:
            slot = self._acquire(tried)
            if slot is None:
                raise OpenpiConnectionError("pool is closed")
            try:
                return slot.client.infer(obs)
            except OpenpiConnectionError as exc:
                if isinstance(exc, OpenpiAuthError) or self._closed:
                    raise
                with self._cond:
                    if self._dead[slot.host_index] is None:
                        logger.error("openpi replica %s is down: %s", slot.client.endpoint, exc)
                    self._dead[slot.host_index] = exc
                    self._cond.notify_all()
                if not self._failover:
                    raise
                tried.add(slot.host_index)
                if len(tried) >= len(self.endpoints):
                    raise
                logger.warning(
                    "openpi replica %s unreachable (%s); failing over to another replica",
                    slot.client.endpoint,
                    exc,
                )
            finally:
                self._release(slot)
