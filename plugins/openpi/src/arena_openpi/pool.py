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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from arena.remote import hosts as _hosts
from arena.remote.fanout import ReplicaPool
from arena.remote.hosts import HostSpec
from arena_openpi.wire.client import DEFAULT_PORT, OpenpiClient, _endpoint
from arena_openpi.wire.errors import OpenpiConnectionError, OpenpiTimeoutError

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


class OpenpiPool:
    """``connections_per_host`` connections to each replica in ``hosts``; requests run concurrently.

    The kit's :class:`~arena.remote.fanout.ReplicaPool` with openpi's clients: all connections
    are opened (in parallel) at construction, and if any replica is unreachable the pool
    closes what it opened and raises, so a misconfigured host list fails at preflight rather
    than mid-evaluation. Later connection losses are handled by each :class:`OpenpiClient`
    (reconnect + retry). With ``failover=True`` a request whose replica stays unreachable is
    retried on another replica, and that replica is marked down for good: later requests
    fail over, or fail at once when no replica is left, instead of each waiting out its own
    reconnect window.

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
        factory = client_factory or (lambda host, port: OpenpiClient(host, port, **client_kwargs))
        self._pool: ReplicaPool[OpenpiClient] = ReplicaPool(
            self.endpoints,
            factory,
            per_replica=connections_per_host,
            failover=failover and len(self.endpoints) > 1,
            name="openpi pool",
            error=OpenpiConnectionError,
        )
        logger.info(
            "openpi pool: %d connection(s) to %s", self.size, ", ".join(_endpoint(h, p) for h, p in self.endpoints)
        )

    @property
    def size(self) -> int:
        """Total number of connections = maximum requests in flight."""
        return len(self._pool.connections)

    @property
    def num_reconnects(self) -> int:
        """Connections reopened after a loss, over all replicas (diagnostics, tests)."""
        return sum(c.num_reconnects for c in self._pool.connections)

    @property
    def metadata(self) -> dict[str, Any]:
        """Metadata of the first replica (replicas of one deployment serve the same model)."""
        return self._pool.connections[0].metadata

    def submit(self, obs: Mapping[str, Any]) -> concurrent.futures.Future:
        """Queue one observation; the future resolves to its result map."""
        try:
            return self._pool.submit(lambda client: client.infer(obs))
        except RuntimeError:
            raise OpenpiConnectionError("pool is closed") from None

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
        """Close every connection and stop the workers; queued requests fail."""
        self._pool.close()

    def __enter__(self) -> OpenpiPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
