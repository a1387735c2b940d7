"""Client for GR00T policy servers (Isaac-GR00T `PolicyServer`, or our `Gr00tServer`).

Speaks the upstream protocol byte for byte and adds what the upstream client lacks: timeouts
on every request, socket recreation after a failure, retries with exponential backoff for
idempotent calls, clear errors naming the server and the endpoint, and data-parallel
`get_action` over several server replicas.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import zmq

from arena.remote.retry import RetryPolicy
from arena_gr00t.wire.codec import DEFAULT_MAX_MESSAGE_BYTES, ModalityConfig, decode, encode
from arena_gr00t.wire.errors import (
    Gr00tConnectionError,
    Gr00tMessageTooLargeError,
    Gr00tProtocolError,
    Gr00tServerError,
    Gr00tTimeoutError,
)
from arena_gr00t.wire.observation import batch_size, concat_batches, slice_batch, split_ranges
from arena_gr00t.wire.transport import (
    HostPort,
    Transport,
    TransportError,
    ZmqReqTransport,
    host_label,
    parse_hosts,
)

__all__ = ["Gr00tClient", "IDEMPOTENT_ENDPOINTS", "build_request"]

log = logging.getLogger(__name__)

IDEMPOTENT_ENDPOINTS = frozenset({"ping", "get_modality_config", "get_action", "reset"})
"""Endpoints that are safe to resend after a timeout (the server may have run them once)."""

TransportFactory = Callable[[str, int, zmq.Context], Transport]


def build_request(endpoint: str, data: Mapping[str, Any] | None = None, api_token: str | None = None) -> dict[str, Any]:
    """The request envelope: `endpoint`, then `data` (only if given), then `api_token` (if set)."""
    request: dict[str, Any] = {"endpoint": endpoint}
    if data is not None:
        request["data"] = data
    if api_token is not None:
        request["api_token"] = api_token
    return request


class Gr00tClient:
    """Talks to one GR00T server, or to several identical replicas.

    Args:
        hosts: `[(host, port), ...]`, or a spec string `"a:5555,b:5556"` (port defaults to 5555).
            With several replicas a batched `get_action` is split across them.
        api_token: sent with every request when set.
        timeout_s: limit for one request/reply attempt.
        retries: extra attempts for idempotent endpoints (ping, get_modality_config,
            get_action, reset) after a timeout or socket error. `kill` and custom calls are
            sent once unless `call(..., idempotent=True)`.
        deadline_s: optional cap on the total time of one call, attempts and backoff included.
        backoff_s, max_backoff_s: first pause between attempts and its cap (doubling).
        max_message_bytes: replies larger than this are refused (None: no limit).
        transport_factory: `(host, port, zmq_context) -> Transport`, to replace the ZMQ REQ
            transport (tests, other backends).

    Use as a context manager or call `close()`; sockets use linger 0, so a forgotten client
    never blocks interpreter exit either.
    """

    def __init__(
        self,
        hosts: str | Sequence[str | HostPort] = (("127.0.0.1", 5555),),
        *,
        api_token: str | None = None,
        timeout_s: float = 10.0,
        retries: int = 3,
        deadline_s: float | None = None,
        backoff_s: float = 0.05,
        max_backoff_s: float = 1.0,
        max_message_bytes: int | None = DEFAULT_MAX_MESSAGE_BYTES,
        transport_factory: TransportFactory | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        if deadline_s is not None and deadline_s <= 0:
            raise ValueError(f"deadline_s must be > 0 or None, got {deadline_s}")
        self.replicas: tuple[HostPort, ...] = tuple(parse_hosts(hosts))
        self.api_token = api_token
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.deadline_s = deadline_s
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.max_message_bytes = max_message_bytes
        self._context = zmq.Context()
        self._context.setsockopt(zmq.LINGER, 0)
        factory = transport_factory or (
            lambda h, p, ctx: ZmqReqTransport(h, p, context=ctx, max_message_bytes=max_message_bytes)
        )
        try:
            self._transports: list[Transport] = [factory(h, p, self._context) for h, p in self.replicas]
        except BaseException:
            self._context.destroy(linger=0)
            raise
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        self._rotation = 0
        self._closed = False
        self._finalizer = weakref.finalize(self, _release, self._transports, self._context, None)

    def __repr__(self) -> str:
        hosts = ",".join(host_label(h, p) for h, p in self.replicas)
        return f"Gr00tClient({hosts!r}, timeout_s={self.timeout_s}, retries={self.retries})"

    # ------------------------------------------------------------------ endpoints

    def ping(self) -> dict[str, Any]:
        """Check every replica answers; returns the first replica's reply (`{"status": "ok", ...}`)."""
        replies = self._on_all_replicas("ping", None)
        return replies[0]

    def get_modality_config(self) -> dict[str, ModalityConfig]:
        """`{"video": MC, "state": MC, "action": MC, "language": MC}` from the first replica."""
        reply = self._roundtrip(0, "get_modality_config", None)
        if not isinstance(reply, Mapping) or not all(isinstance(v, ModalityConfig) for v in reply.values()):
            raise Gr00tProtocolError(f"get_modality_config: expected a map of ModalityConfig, got {_describe(reply)}")
        return dict(reply)

    def get_action(
        self, observation: Mapping[str, Any], options: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run the policy on a batched observation (nested or flat form) -> (action, info).

        With several replicas the batch is split into contiguous sub-batches answered
        concurrently and concatenated back in row order; `info` values that are batched are
        concatenated too, other info values come from the first sub-batch.
        """
        n = len(self._transports)
        if n == 1:
            return self._get_action_on(0, observation, options)
        total = batch_size(observation)
        if total == 0:
            raise ValueError("get_action: the observation has an empty batch")
        ranges = split_ranges(total, n)
        if len(ranges) < n:  # fewer rows than replicas: spread successive calls around
            with self._executor_lock:
                offset = self._rotation
                self._rotation = (self._rotation + len(ranges)) % n
        else:
            offset = 0
        jobs = [
            (lambda i=(offset + k) % n, r=r: self._get_action_on(i, slice_batch(observation, *r), options))
            for k, r in enumerate(ranges)
        ]
        results = self._run_concurrently(jobs)
        sizes = [stop - start for start, stop in ranges]
        try:
            action = concat_batches([a for a, _ in results], sizes, strict=True)
        except ValueError as e:
            raise Gr00tProtocolError(f"get_action: replica replies do not fit together: {e}") from e
        info = concat_batches([i for _, i in results], sizes, strict=False)
        return action, info

    def reset(self, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Reset the policy on every replica; returns the first replica's info map."""
        replies = self._on_all_replicas("reset", {"options": options})
        return replies[0]

    def kill(self) -> None:
        """Ask every replica to exit its serve loop (sent once; the server may refuse)."""
        self._on_all_replicas("kill", None)

    def call(
        self,
        endpoint: str,
        data: Mapping[str, Any] | None = None,
        *,
        replica: int = 0,
        idempotent: bool | None = None,
    ) -> Any:
        """Call any endpoint on one replica; `data` is sent only when given.

        `idempotent` defaults to whether `endpoint` is one of IDEMPOTENT_ENDPOINTS.
        """
        if not 0 <= replica < len(self._transports):
            raise IndexError(f"replica {replica} out of range (have {len(self._transports)})")
        return self._roundtrip(replica, endpoint, data, idempotent=idempotent)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close every socket (linger 0), stop the worker threads and terminate the ZMQ context."""
        if self._closed:
            return
        self._closed = True
        executor, self._executor = self._executor, None
        self._finalizer.detach()
        _release(self._transports, self._context, executor)

    def __enter__(self) -> Gr00tClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _get_action_on(
        self, replica: int, observation: Mapping[str, Any], options: Mapping[str, Any] | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        reply = self._roundtrip(replica, "get_action", {"observation": observation, "options": options})
        # Upstream answers [action, info]; tolerate servers that answer the action map alone.
        if isinstance(reply, Mapping):
            return dict(reply), {}
        if isinstance(reply, (list, tuple)) and len(reply) == 2 and isinstance(reply[0], Mapping):
            info = reply[1] if isinstance(reply[1], Mapping) else {"info": reply[1]}
            return dict(reply[0]), dict(info)
        raise Gr00tProtocolError(
            f"get_action from {self._label(replica)}: expected [action, info], got {_describe(reply)}"
        )

    def _on_all_replicas(self, endpoint: str, data: Mapping[str, Any] | None) -> list[Any]:
        jobs = [(lambda i=i: self._roundtrip(i, endpoint, data)) for i in range(len(self._transports))]
        return self._run_concurrently(jobs)

    def _run_concurrently(self, jobs: list[Callable[[], Any]]) -> list[Any]:
        """Run jobs (one per replica) in parallel, first inline; wait for all, raise the first error."""
        if len(jobs) == 1:
            return [jobs[0]()]
        executor = self._get_executor()
        futures: list[Future] = [executor.submit(job) for job in jobs[1:]]
        results: list[Any] = []
        errors: list[BaseException] = []
        try:
            results.append(jobs[0]())
        except BaseException as e:  # noqa: BLE001 - re-raised below after the others finish
            errors.append(e)
        for f in futures:
            try:
                results.append(f.result())
            except BaseException as e:  # noqa: BLE001
                errors.append(e)
        if errors:
            raise errors[0]
        return results

    def _get_executor(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._closed:
                raise RuntimeError("Gr00tClient is closed")
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=max(1, len(self._transports) - 1), thread_name_prefix="gr00t-replica"
                )
            return self._executor

    def _label(self, replica: int) -> str:
        return host_label(*self.replicas[replica])

    def _roundtrip(
        self, replica: int, endpoint: str, data: Mapping[str, Any] | None, *, idempotent: bool | None = None
    ) -> Any:
        if self._closed:
            raise RuntimeError("Gr00tClient is closed")
        if idempotent is None:
            idempotent = endpoint in IDEMPOTENT_ENDPOINTS
        payload = encode(build_request(endpoint, data, self.api_token))
        if self.max_message_bytes is not None and len(payload) > self.max_message_bytes:
            raise Gr00tMessageTooLargeError(len(payload), self.max_message_bytes)
        transport = self._transports[replica]
        retry = RetryPolicy(
            retries=self.retries if idempotent else 0,
            backoff_s=self.backoff_s,
            max_backoff_s=self.max_backoff_s,
            deadline_s=self.deadline_s,
        )
        raw = retry.call(
            lambda left: transport.request(payload, self.timeout_s if left is None else min(self.timeout_s, left)),
            f"{self._label(replica)} {endpoint!r}",
            retry_on=(TransportError,),
            give_up=lambda e, attempts, elapsed: self._give_up(replica, endpoint, e, attempts, elapsed),  # type: ignore[arg-type]
        )
        # Replies are small (actions); writable arrays suit torch.from_numpy and in-place use.
        reply = decode(raw, max_message_bytes=self.max_message_bytes, writable_arrays=True)
        if isinstance(reply, Mapping) and "error" in reply:
            raise Gr00tServerError(str(reply["error"]), endpoint=endpoint, address=self._label(replica))
        return reply

    def _give_up(
        self, replica: int, endpoint: str, error: TransportError, attempts: int, elapsed: float
    ) -> Gr00tConnectionError:
        host, port = self.replicas[replica]
        probe = getattr(self._transports[replica], "probe", None)
        diagnosis = probe(min(0.5, self.timeout_s)) if callable(probe) else None
        summary = (
            f"GR00T server at {host_label(host, port)} gave no reply to {endpoint!r} after "
            f"{attempts} attempt{'s' if attempts != 1 else ''} over {elapsed:.2f}s "
            f"(timeout {self.timeout_s:g}s per attempt)"
        )
        kwargs = dict(host=host, port=port, endpoint=endpoint, attempts=attempts, elapsed_s=elapsed)
        if diagnosis is not None:
            return Gr00tConnectionError(f"{summary}: server not reachable: {diagnosis}", **kwargs)
        if error.timed_out:
            return Gr00tTimeoutError(
                f"{summary}: the port accepts connections, so the server is busy, stuck, or not "
                f"a GR00T server; last error: {error}",
                **kwargs,
            )
        return Gr00tConnectionError(f"{summary}: {error}", **kwargs)


def _release(transports: list[Transport], context: zmq.Context, executor: ThreadPoolExecutor | None) -> None:
    if executor is not None:
        executor.shutdown(wait=True)
    for t in transports:
        try:
            t.close()
        except Exception:  # noqa: BLE001 - best effort at teardown
            log.debug("error closing %r", t, exc_info=True)
    context.destroy(linger=0)


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:200]}{'...' if len(text) > 200 else ''}"
