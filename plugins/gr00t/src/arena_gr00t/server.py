"""Reference GR00T policy server, protocol-faithful to Isaac-GR00T's `PolicyServer`.

Used to test the client, to benchmark the transport, and to serve any handler object (a real
policy, a replay, a scripted expert) to unmodified upstream clients. Differences from upstream,
all on the safe side: binds 127.0.0.1 by default, compares the token in constant time, honours
`kill` only when authenticated or explicitly allowed, refuses oversized messages with an error
reply, and checks `data` keys against the endpoint's parameters before calling the handler.

Socket choice: a ROUTER socket answering one request at a time, like upstream's REP, but
every reply is sent to the routing id of the peer that sent the request, after checking the
REQ envelope (routing id, empty delimiter, one payload frame); a request in any other shape
is dropped. So a peer that speaks garbage can never make another peer's reply go astray.

Memory: libzmq cuts off any message over `max_message_bytes` plus a 64 KiB slack
(ZMQ_MAXMSGSIZE: that peer's connection is dropped, no reply is possible; within the slack
the peer gets a "Request too large" error reply) and queues at most `RCVHWM` messages per peer,
so a message can cost at most its size; the request's structure is checked before it is
decoded (:mod:`arena.remote.msgpack_limits`), and with a token configured, the token is
compared before anything else is decoded, so unauthenticated peers get no expensive work.
"""

from __future__ import annotations

import hmac
import inspect
import ipaddress
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import attrs
import zmq

from arena.remote.msgpack_limits import WireLimitError, peek_str, scan
from arena_gr00t.wire.codec import DEFAULT_MAX_MESSAGE_BYTES, ModalityConfig, decode, encode
from arena_gr00t.wire.errors import Gr00tCodecError, Gr00tError, Gr00tMessageTooLargeError
from arena_gr00t.wire.transport import DEFAULT_PORT, FRAME_SLACK, host_label, zmq_address

__all__ = ["Gr00tHandler", "Gr00tServer", "UNAUTHORIZED", "RCVHWM"]

log = logging.getLogger(__name__)

UNAUTHORIZED = "Unauthorized: Invalid API token"
#: messages libzmq may queue per peer while the server is busy (each at most max_message_bytes)
RCVHWM = 2


@runtime_checkable
class Gr00tHandler(Protocol):
    """What the server serves; the same three calls upstream's `Gr00tPolicy` exposes."""

    def get_modality_config(self) -> Mapping[str, ModalityConfig]: ...

    def get_action(
        self, observation: dict[str, Any], options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]: ...

    def reset(self, options: dict[str, Any] | None = None) -> dict[str, Any]: ...


@attrs.frozen
class _Endpoint:
    fn: Callable[..., Any]
    requires_input: bool
    params: frozenset[str] | None  # accepted keys of `data` (None: any, for `**kwargs`)
    required: frozenset[str]  # keys `data` must contain


@attrs.frozen
class _Reply:
    value: Any
    stop: bool = False


def _error(message: str) -> _Reply:
    return _Reply({"error": message})


class Gr00tServer:
    """Serve `handler` on `tcp://host:port` (port 0 picks a free port; see `.port`).

    The socket is bound in the constructor so address errors surface at once. Run
    `serve_forever()` (blocking) or `start_in_thread()`; `stop()` ends the loop from any
    thread within `poll_interval_s`; `close()` releases the socket. A stopped server is not
    restarted; make a new one.

    Arrays in the observation reach the handler as read-only views over the request bytes
    (no copy); pass `writable_arrays=True` for writable copies. Requests are handled one at a
    time, so a handler that blocks blocks the server (as upstream).
    """

    def __init__(
        self,
        handler: Gr00tHandler,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        api_token: str | None = None,
        allow_kill: bool = False,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        writable_arrays: bool = False,
        poll_interval_s: float = 0.1,
        context: zmq.Context | None = None,
    ) -> None:
        if api_token is not None and not api_token:
            raise ValueError("api_token must be a non-empty string or None")
        self.handler = handler
        self.host = host
        self.api_token = api_token
        self.allow_kill = allow_kill
        self.max_message_bytes = int(max_message_bytes)
        self.writable_arrays = writable_arrays
        self.poll_interval_s = poll_interval_s
        self._own_context = context is None
        self._context = context if context is not None else zmq.Context()
        self._endpoints: dict[str, _Endpoint] = {}
        self._stop = threading.Event()
        self._serving = threading.Lock()
        self._thread: threading.Thread | None = None
        self.requests_served = 0
        self._warned_unused_token = False

        self.register_endpoint("ping", self._ping, requires_input=False)
        self.register_endpoint("kill", self._kill, requires_input=False)
        self.register_endpoint("get_modality_config", handler.get_modality_config, requires_input=False)
        self.register_endpoint(
            "get_action", handler.get_action, params=("observation", "options"), required=("observation",)
        )
        self.register_endpoint("reset", handler.reset, params=("options",), required=())

        self._socket = self._bind(port)
        if api_token is None and not _is_loopback(host):
            log.warning("GR00T server on %s has no API token: anyone who can reach it can query it", self.address)

    # ------------------------------------------------------------------ setup

    def _bind(self, port: int) -> zmq.Socket:
        sock = self._context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes + FRAME_SLACK)
        sock.setsockopt(zmq.RCVHWM, RCVHWM)
        sock.setsockopt(zmq.SNDTIMEO, 1000)
        if ":" in self.host:
            sock.setsockopt(zmq.IPV6, 1)
        address = zmq_address(self.host, "*" if port == 0 else port)
        try:
            sock.bind(address)
        except zmq.ZMQError as e:
            sock.close(linger=0)
            raise Gr00tError(f"GR00T server cannot bind {address}: {e}") from e
        endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.port = int(endpoint.rsplit(":", 1)[1])
        self.address = host_label(self.host, self.port)
        return sock

    def register_endpoint(
        self,
        name: str,
        fn: Callable[..., Any],
        *,
        requires_input: bool = True,
        params: tuple[str, ...] | None = None,
        required: tuple[str, ...] | None = None,
    ) -> None:
        """Add or replace an endpoint. With input, `fn(**data)` is called after checking keys.

        `params`/`required` default to `fn`'s keyword parameters (those without defaults are
        required; a `**kwargs` parameter accepts any key).
        """
        sig_params, sig_required = _signature_keys(fn)
        accepted = sig_params if params is None else frozenset(params)
        needed = sig_required if required is None else frozenset(required)
        self._endpoints[name] = _Endpoint(fn, requires_input, accepted, needed)

    # ------------------------------------------------------------------ serving

    def serve_forever(self) -> None:
        """Answer requests until `stop()`, an authorised `kill`, or `close()`."""
        if not self._serving.acquire(blocking=False):
            raise RuntimeError("serve_forever is already running")
        try:
            log.info("GR00T server listening on %s (token %s)", self.address, "set" if self.api_token else "not set")
            timeout_ms = max(1, int(self.poll_interval_s * 1000))
            while not self._stop.is_set():
                try:
                    if not self._socket.poll(timeout_ms, zmq.POLLIN):
                        continue
                    frames = self._socket.recv_multipart(flags=zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    continue
                except zmq.ZMQError as e:
                    if self._stop.is_set() or e.errno == zmq.ENOTSOCK:
                        break
                    raise
                envelope = _envelope(frames)
                if envelope is None:
                    log.warning("dropped a message that is not a REQ request (%d frames)", len(frames))
                    del frames
                    continue
                try:
                    reply = self._handle_frames(frames[len(envelope) :])
                except Exception as e:  # noqa: BLE001 - no request may stop the server
                    log.exception("GR00T server: unexpected failure handling a request")
                    reply = _error(f"Internal server error: {type(e).__name__}")
                del frames
                self.requests_served += 1
                try:
                    self._socket.send_multipart([*envelope, self._encode_reply(reply)], copy=False)
                except zmq.ZMQError as e:  # the peer went away meanwhile: its reply has no destination
                    log.warning("GR00T server could not send a reply (%s)", e)
                if reply.stop:
                    log.info("GR00T server on %s stopping on kill request", self.address)
                    break
        finally:
            self._serving.release()

    def start_in_thread(self) -> threading.Thread:
        """Run `serve_forever` in a daemon thread (tests, benchmarks, in-process serving)."""
        thread = threading.Thread(target=self.serve_forever, name=f"gr00t-server-{self.port}", daemon=True)
        thread.start()
        self._thread = thread
        return thread

    def stop(self) -> None:
        """Ask the loop to exit; safe from any thread or signal handler."""
        self._stop.set()

    def close(self) -> None:
        """Stop serving, wait for the loop (up to 5 s), close the socket (linger 0)."""
        self.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        if self._serving.acquire(timeout=5.0):
            self._serving.release()
        if not self._socket.closed:
            self._socket.close(linger=0)
        if self._own_context:
            self._context.term()

    def __enter__(self) -> Gr00tServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ requests

    def handle_message(self, message: bytes | memoryview) -> bytes:
        """Bytes in, bytes out: one request processed exactly as the serve loop would."""
        reply = self._handle_frames([message])
        if reply.stop:
            self.stop()
        return self._encode_reply(reply)

    def _handle_frames(self, frames: list[Any]) -> _Reply:
        if len(frames) != 1:
            return _error(f"Malformed request: expected one frame, got {len(frames)}")
        frame = frames[0]
        data = frame.buffer if hasattr(frame, "buffer") else frame
        size = memoryview(data).nbytes
        if size > self.max_message_bytes:
            return _error(f"Request too large: {size} bytes exceed the limit of {self.max_message_bytes}")
        try:
            scan(data)
        except WireLimitError as e:
            log.warning("undecodable request: %s", e)
            return _error(f"Malformed request: {e}")
        presented = peek_str(data, "api_token")
        if self.api_token is not None and not self._token_matches(presented):
            log.warning("rejected request with a missing or wrong API token")
            return _error(UNAUTHORIZED)
        if self.api_token is None and presented is not None and not self._warned_unused_token:
            self._warned_unused_token = True
            log.warning(
                "a client sent an API token, but this server has none (start it with --token to require "
                "one): requests are not authenticated"
            )
        try:
            request = decode(data, max_message_bytes=self.max_message_bytes, writable_arrays=self.writable_arrays)
        except Gr00tMessageTooLargeError as e:
            log.warning("refused oversized request: %s", e)
            return _error(f"Request too large: {e}")
        except Gr00tCodecError as e:
            log.warning("undecodable request: %s", e)
            return _error(f"Malformed request: {e}")
        if not isinstance(request, dict):
            return _error(f"Malformed request: expected a map, got {type(request).__name__}")
        return self._dispatch(request)

    def _token_matches(self, presented: object) -> bool:
        if self.api_token is None:
            return True
        if not isinstance(presented, str):
            return False
        return hmac.compare_digest(presented.encode("utf-8"), self.api_token.encode("utf-8"))

    def _token_ok(self, request: dict[str, Any]) -> bool:
        return self._token_matches(request.get("api_token"))

    def _dispatch(self, request: dict[str, Any]) -> _Reply:
        if not self._token_ok(request):
            log.warning("rejected request with a missing or wrong API token")
            return _error(UNAUTHORIZED)
        name = request.get("endpoint", "get_action")
        endpoint = self._endpoints.get(name) if isinstance(name, str) else None
        if endpoint is None:
            return _error(f"Unknown endpoint: {name}")
        try:
            if not endpoint.requires_input:
                value = endpoint.fn()
            else:
                data = request.get("data")
                data = {} if data is None else data
                if not isinstance(data, dict):
                    return _error(f"Malformed request: 'data' must be a map, got {type(data).__name__}")
                unexpected = [] if endpoint.params is None else sorted(set(data) - endpoint.params)
                if unexpected:
                    return _error(
                        f"Unexpected key(s) in data for endpoint {name!r}: {unexpected}; "
                        f"accepted: {sorted(endpoint.params)}"
                    )
                missing = sorted(endpoint.required - set(data))
                if missing:
                    return _error(f"Missing key(s) in data for endpoint {name!r}: {missing}")
                value = endpoint.fn(**data)
        except Exception as e:  # noqa: BLE001 - the handler's failure goes back to the client
            log.exception("GR00T handler failed on endpoint %r", name)
            return _error(f"{type(e).__name__}: {e}")
        if isinstance(value, _Reply):
            return value
        return _Reply(value)

    def _encode_reply(self, reply: _Reply) -> bytes:
        try:
            return encode(reply.value)
        except Gr00tCodecError as e:
            log.error("cannot encode reply: %s", e)
            return encode({"error": f"Cannot encode reply: {e}"})

    # ------------------------------------------------------------------ built-in endpoints

    def _ping(self) -> dict[str, str]:
        return {"status": "ok", "message": "Server is running"}

    def _kill(self) -> _Reply:
        if self.api_token is None and not self.allow_kill:
            log.warning("refused kill: no API token configured and allow_kill=False")
            return _error(
                "kill is disabled on this server: start it with an API token (and send it) or allow_kill=True"
            )
        return _Reply(None, stop=True)


def _signature_keys(fn: Callable[..., Any]) -> tuple[frozenset[str] | None, frozenset[str]]:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return None, frozenset()
    params: set[str] | None = set()
    required = set()
    for p in parameters:
        if p.kind is p.VAR_KEYWORD:
            params = None
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            if params is not None:
                params.add(p.name)
            if p.default is p.empty:
                required.add(p.name)
    return (None if params is None else frozenset(params)), frozenset(required)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _envelope(frames: list[Any]) -> list[Any] | None:
    """The routing frames of a REQ request: ids up to and including the empty delimiter (None: not one)."""
    for i, frame in enumerate(frames[:8]):
        if i and (frame.buffer if hasattr(frame, "buffer") else memoryview(frame)).nbytes == 0:
            return frames[: i + 1] if i + 1 < len(frames) else None
    return None
