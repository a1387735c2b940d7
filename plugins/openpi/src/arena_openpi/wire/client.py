"""Blocking client for openpi's WebSocket policy server (``WebsocketPolicyServer``).

Protocol (see docs/wire-protocols.md, section openpi): on connect the server sends one binary
frame with its metadata map; then each request is one binary frame (observation map) answered
by one binary frame (result map). A policy error comes back as a TEXT frame holding the
server's traceback, after which the server closes the connection with code 1011.

Design choices, and why:

* websockets' *sync* client: the caller (an eval loop) is synchronous, and the library runs a
  background thread that answers the server's pings even while we wait for a reply.
* Keepalive: websockets' defaults (ping every 20 s, 20 s timeout) drop the connection when the
  stock server blocks its event loop for more than ~40 s, which a first inference (JIT
  compilation) easily does. We still send pings (``ping_interval_s``, keeps NATs and proxies
  from idling the connection out) but by default never time out on a missing pong
  (``ping_timeout_s=None``). A dead server during a request is caught by ``timeout_s``; a
  connection that died between requests is noticed on the next send and reopened.
* Inference is idempotent, so a request that fails because the connection was lost (server
  restart, network blip) is retried on a reopened connection, reconnecting with exponential
  backoff up to ``reconnect_deadline_s``. A request is never retried after a reply, an error
  frame or a timeout, so the server never computes the same request twice for one success.
* A receive timeout drops the connection: the late reply would otherwise be taken as the
  answer to the next request.
"""

from __future__ import annotations

import http.client
import inspect
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, Final

import attrs
import websockets
import websockets.sync.client
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from arena_openpi.wire.codec import DEFAULT_MAX_MESSAGE_BYTES, decode, encode
from arena_openpi.wire.errors import (
    OpenpiAuthError,
    OpenpiConnectionError,
    OpenpiError,
    OpenpiMessageTooLargeError,
    OpenpiProtocolError,
    OpenpiServerError,
    OpenpiTimeoutError,
)

__all__ = ["DEFAULT_PORT", "Health", "OpenpiClient", "healthz"]

logger = logging.getLogger(__name__)

#: openpi's default serving port.
DEFAULT_PORT: Final[int] = 8000

_CLOSE_MESSAGE_TOO_BIG: Final[int] = 1009
_AUTH_STATUSES: Final = (401, 403)

# websockets added ``proxy``, sync-client keepalive and ``legacy`` over its versions; pass only
# what the installed version accepts, since unknown keywords would reach socket.create_connection.
_CONNECT_PARAMS: Final = frozenset(inspect.signature(websockets.sync.client.connect).parameters)


def _endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class OpenpiClient:
    """One WebSocket connection to one openpi server, one request at a time.

    Connects eagerly (unless ``connect=False``) so that a wrong host, port or API key fails
    at construction, waiting up to ``reconnect_deadline_s`` for a server that is still
    starting. Thread-safe in the sense that concurrent ``infer`` calls are serialised; use
    :class:`arena_openpi.pool.OpenpiPool` for concurrent requests.

    Args:
        host, port: server address (``ws://host:port``; ``wss://`` with ``secure=True``).
        api_key: sent as ``Authorization: Api-Key KEY`` (the stock server ignores it; a
            gateway or our :class:`~arena_openpi.server.OpenpiServer` checks it).
        open_timeout_s: TCP + WebSocket handshake + metadata frame, per attempt.
        timeout_s: wait for one reply; ``None`` waits forever. Generous by default because a
            first inference may compile for minutes.
        ping_interval_s, ping_timeout_s: keepalive, see the module docstring.
        reconnect_deadline_s: how long to keep trying to (re)connect, per connection loss.
        backoff_initial_s, backoff_max_s: exponential backoff between connection attempts.
        max_attempts: sends of one request across connection losses.
        max_message_bytes: cap on a request we send and on a reply we accept (``None``: none).
        close_timeout_s: bound on the closing handshake, so ``close()`` never hangs.
        proxy: forwarded to websockets (``None``: direct; ``True``: use the environment's
            proxy settings). Direct by default because policy servers sit on the local network.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        api_key: str | None = None,
        open_timeout_s: float = 10.0,
        timeout_s: float | None = 300.0,
        ping_interval_s: float | None = 20.0,
        ping_timeout_s: float | None = None,
        reconnect_deadline_s: float = 30.0,
        backoff_initial_s: float = 0.05,
        backoff_max_s: float = 2.0,
        max_attempts: int = 3,
        max_message_bytes: int | None = DEFAULT_MAX_MESSAGE_BYTES,
        close_timeout_s: float = 1.0,
        secure: bool = False,
        proxy: str | bool | None = None,
        connect: bool = True,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        if not 0 < port < 65536:
            raise ValueError(f"port must be in 1..65535, got {port}")
        self.host = host
        self.port = port
        self.endpoint = _endpoint(host, port)
        self.uri = f"{'wss' if secure else 'ws'}://{self.endpoint}"
        self._api_key = api_key
        self._open_timeout_s = open_timeout_s
        self._timeout_s = timeout_s
        self._ping_interval_s = ping_interval_s
        self._ping_timeout_s = ping_timeout_s
        self._reconnect_deadline_s = reconnect_deadline_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._max_attempts = max_attempts
        self._max_message_bytes = max_message_bytes
        self._close_timeout_s = close_timeout_s
        self._proxy = proxy

        self._lock = threading.Lock()  # one request at a time on the connection
        self._closed = threading.Event()
        self._conn: websockets.sync.client.ClientConnection | None = None
        self._metadata: dict[str, Any] | None = None
        self.num_reconnects = 0  # connections opened after the first one (diagnostics)
        self._num_opens = 0
        if connect:
            self.connect()

    # ------------------------------------------------------------------ public API

    @property
    def metadata(self) -> dict[str, Any]:
        """The server's metadata map, from the latest connection (connects if needed)."""
        if self._metadata is None:
            self.connect()
        assert self._metadata is not None
        return self._metadata

    @property
    def connected(self) -> bool:
        """Whether a connection is held (it may have died since; the next request finds out)."""
        return self._conn is not None

    def connect(self) -> None:
        """Open the connection now if it is not open (retrying up to the deadline)."""
        with self._lock:
            self._ensure_connected("connect")

    def infer(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        """Send one observation, return the server's result map.

        Raises:
            OpenpiServerError: the policy raised (traceback inside); the connection is
                reopened on the next call.
            OpenpiTimeoutError: no reply within ``timeout_s``.
            OpenpiConnectionError: the server stayed unreachable.
            OpenpiMessageTooLargeError: request or reply over a size limit.
            OpenpiCodecError: ``obs`` holds something the protocol cannot carry.
        """
        payload = encode(obs)
        if self._max_message_bytes is not None and len(payload) > self._max_message_bytes:
            raise OpenpiMessageTooLargeError(
                f"request of {len(payload)} bytes exceeds max_message_bytes={self._max_message_bytes}"
            )
        with self._lock:
            return self._infer_locked(payload)

    def close(self) -> None:
        """Close the connection; idempotent, bounded by ``close_timeout_s``, safe from any thread."""
        self._closed.set()
        conn, self._conn = self._conn, None
        if conn is not None:
            self._close_quietly(conn)

    def __enter__(self) -> OpenpiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed.is_set() else ("connected" if self._conn else "idle")
        return f"OpenpiClient({self.uri}, {state})"

    # ------------------------------------------------------------------ internals

    def _infer_locked(self, payload: bytes) -> dict[str, Any]:
        for attempt in range(1, self._max_attempts + 1):
            conn = self._ensure_connected("request" if attempt == 1 else "retry after connection loss")
            try:
                conn.send(payload)
                reply = conn.recv(timeout=self._timeout_s)
            except TimeoutError:
                self._discard(conn)
                raise OpenpiTimeoutError(
                    f"no reply from {self.uri} within timeout_s={self._timeout_s}; connection dropped "
                    "(a late reply would otherwise answer the next request)"
                ) from None
            except (ConnectionClosed, OSError) as exc:
                self._discard(conn)
                self._raise_if_final(exc, len(payload))
                if attempt == self._max_attempts:
                    raise OpenpiConnectionError(
                        f"request to {self.uri} failed: the connection was lost {attempt} times "
                        f"(max_attempts={self._max_attempts}); last error: {_describe(exc)}"
                    ) from exc
                logger.warning(
                    "openpi connection to %s lost during a request (%s); reconnecting and retrying (%d/%d)",
                    self.uri,
                    _describe(exc),
                    attempt + 1,
                    self._max_attempts,
                )
                continue
            if isinstance(reply, str):
                # The server closes with 1011 after the traceback; reopen on the next call.
                self._discard(conn)
                raise OpenpiServerError(reply, endpoint=self.uri)
            result = decode(reply, max_bytes=None)  # size already bounded by websockets' max_size
            if not isinstance(result, dict):
                self._discard(conn)
                raise OpenpiProtocolError(f"reply from {self.uri} is a {type(result).__name__}, expected a map")
            return result
        raise AssertionError("unreachable")

    def _raise_if_final(self, exc: BaseException, payload_size: int) -> None:
        """Turn connection losses that a retry cannot fix into their own errors."""
        if self._closed.is_set():
            raise OpenpiConnectionError(f"client for {self.uri} was closed") from exc
        if not isinstance(exc, ConnectionClosed):
            return
        if exc.rcvd is not None and exc.rcvd.code == _CLOSE_MESSAGE_TOO_BIG:
            raise OpenpiMessageTooLargeError(
                f"server {self.uri} refused our request of {payload_size} bytes as too large "
                f"(close code 1009{': ' + exc.rcvd.reason if exc.rcvd.reason else ''})"
            ) from exc
        if exc.sent is not None and exc.sent.code == _CLOSE_MESSAGE_TOO_BIG:
            raise OpenpiMessageTooLargeError(
                f"reply from {self.uri} exceeds max_message_bytes={self._max_message_bytes}"
            ) from exc

    def _ensure_connected(self, reason: str) -> websockets.sync.client.ClientConnection:
        if self._closed.is_set():
            raise OpenpiConnectionError(f"client for {self.uri} is closed")
        if self._conn is not None:
            return self._conn
        start = time.monotonic()
        deadline = start + self._reconnect_deadline_s
        delay = self._backoff_initial_s
        attempts = 0
        while True:
            attempts += 1
            remaining = deadline - time.monotonic()
            try:
                self._open_once(max(0.1, min(self._open_timeout_s, remaining)))
                assert self._conn is not None
                if attempts > 1 or self._num_opens > 1:
                    logger.info("openpi connection to %s (re)opened after %d attempt(s)", self.uri, attempts)
                return self._conn
            except (OpenpiAuthError, OpenpiMessageTooLargeError):
                raise
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed, OpenpiError) as exc:
                last = exc
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closed.is_set():
                raise OpenpiConnectionError(
                    f"cannot connect to openpi server {self.uri} ({reason}): {attempts} attempt(s) over "
                    f"{time.monotonic() - start:.1f}s (reconnect_deadline_s={self._reconnect_deadline_s}, "
                    f"open_timeout_s={self._open_timeout_s}, exponential backoff "
                    f"{self._backoff_initial_s}..{self._backoff_max_s}s); last error: {_describe(last)}"
                ) from last
            logger.debug("openpi connect to %s failed (%s); retrying in %.2fs", self.uri, _describe(last), delay)
            if self._closed.wait(min(delay, remaining)):
                raise OpenpiConnectionError(f"client for {self.uri} was closed while connecting") from last
            delay = min(delay * 2, self._backoff_max_s)

    def _open_once(self, open_timeout_s: float) -> None:
        headers = {"Authorization": f"Api-Key {self._api_key}"} if self._api_key else None
        options: dict[str, Any] = {
            "compression": None,  # openpi never negotiates compression
            "max_size": self._max_message_bytes,
            "open_timeout": open_timeout_s,
            "close_timeout": self._close_timeout_s,
            "additional_headers": headers,
            "ping_interval": self._ping_interval_s,
            "ping_timeout": self._ping_timeout_s,
            "proxy": self._proxy,
            # websockets >= 17.1 deprecates connect() returning the connection directly unless
            # the historical behaviour is requested; we own the connection's lifetime ourselves.
            "legacy": True,
        }
        options = {k: v for k, v in options.items() if k in _CONNECT_PARAMS}
        try:
            conn = websockets.sync.client.connect(self.uri, **options)
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in _AUTH_STATUSES:
                what = "was refused" if self._api_key else "is required (api_key not set)"
                raise OpenpiAuthError(f"openpi server {self.uri} answered HTTP {status}: the API key {what}") from exc
            raise
        try:
            first = conn.recv(timeout=open_timeout_s)
            if isinstance(first, str):
                raise OpenpiProtocolError(f"openpi server {self.uri} sent text instead of its metadata: {first[:500]}")
            metadata = decode(first, max_bytes=None)
            if not isinstance(metadata, dict):
                raise OpenpiProtocolError(
                    f"openpi server {self.uri} sent a {type(metadata).__name__} as metadata, expected a map"
                )
        except BaseException:
            self._close_quietly(conn)
            raise
        if self._closed.is_set():  # close() raced with us: do not leak the connection
            self._close_quietly(conn)
            raise OpenpiConnectionError(f"client for {self.uri} was closed while connecting")
        self._conn = conn
        self._metadata = metadata
        self._num_opens += 1
        self.num_reconnects = self._num_opens - 1

    def _discard(self, conn: websockets.sync.client.ClientConnection) -> None:
        if self._conn is conn:
            self._conn = None
        self._close_quietly(conn)

    @staticmethod
    def _close_quietly(conn: websockets.sync.client.ClientConnection) -> None:
        try:
            conn.close()
        except Exception:  # closing a broken connection may raise; nothing left to do
            logger.debug("error while closing an openpi connection", exc_info=True)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@attrs.frozen
class Health:
    """Result of :func:`healthz`; truthy when the server answered HTTP 200."""

    ok: bool
    endpoint: str
    status: int | None = None
    body: str = ""
    error: str | None = None

    def __bool__(self) -> bool:
        return self.ok

    def describe(self) -> str:
        if self.error is not None:
            return f"{self.endpoint}: unreachable ({self.error})"
        return f"{self.endpoint}: HTTP {self.status} {self.body!r}"


def healthz(host: str, port: int = DEFAULT_PORT, timeout_s: float = 5.0) -> Health:
    """``GET /healthz`` over plain HTTP: a cheap preflight that needs no WebSocket or codec.

    Never raises for an unhealthy server; the reason is in the returned :class:`Health`.
    No API key is sent: health checks are unauthenticated on openpi servers and ours.
    """
    endpoint = _endpoint(host, port)
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        body = response.read(4096).decode("utf-8", errors="replace").strip()
    except (OSError, http.client.HTTPException) as exc:
        return Health(ok=False, endpoint=endpoint, error=_describe(exc))
    finally:
        conn.close()
    return Health(ok=response.status == 200, endpoint=endpoint, status=response.status, body=body)
