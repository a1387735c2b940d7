"""Reference openpi policy server, wire-compatible with openpi's ``WebsocketPolicyServer``.

It exists so that tests, benches and users without openpi installed can serve a policy over
the genuine protocol (metadata frame, one result map per request, traceback TEXT frame +
close 1011 on error, ``GET /healthz``). Differences from the stock server, each deliberate:

* binds 127.0.0.1 by default (stock: 0.0.0.0), because serving a policy to the whole network
  should be an explicit choice;
* optional ``Authorization: Api-Key KEY`` check (stock ignores the header);
* a message size limit (stock: none);
* inference runs in a worker thread, so the event loop keeps answering pings and health
  checks during a slow inference. ``concurrency`` caps how many inferences run at once across
  all connections; the default 1 serialises them like the stock server, which blocks its
  event loop during inference. ``None`` lets every connection infer in parallel.

``server_timing`` follows upstream exactly: ``infer_ms`` times the policy call;
``prev_total_ms`` (from the 2nd request of a connection on) is the previous request's time
from waiting for the observation to having sent the reply.

Command line (serves any policy importable as ``module:factory``)::

    python -m arena_openpi.server --policy my_pkg.policies:make_policy --port 8000
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import hmac
import http
import importlib
import json
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import websockets
import websockets.asyncio.server as ws_server
from websockets.frames import CloseCode

from arena.validators import PORT_RANGE, int_arg
from arena_openpi.wire.codec import DEFAULT_MAX_MESSAGE_BYTES, decode, encode
from arena_openpi.wire.errors import OpenpiProtocolError

__all__ = ["InferFn", "OpenpiServer", "SupportsInfer", "main"]

logger = logging.getLogger(__name__)

#: frames websockets buffers per connection while the server is busy (each at most max_message_bytes)
MAX_QUEUE = 2

InferFn = Callable[[dict[str, Any]], Mapping[str, Any]]


@runtime_checkable
class SupportsInfer(Protocol):
    """Anything with openpi's ``BasePolicy.infer`` shape."""

    def infer(self, obs: dict[str, Any]) -> Mapping[str, Any]: ...


class OpenpiServer:
    """Serve ``policy`` (an object with ``.infer(obs) -> dict`` or a plain function).

    Use :meth:`serve_forever` in a dedicated process, or :meth:`start` / :meth:`stop` (or
    ``with OpenpiServer(...) as server:``) to run it on a background thread. ``port=0`` picks
    a free port; read the bound one from :attr:`port` after :meth:`start`.
    """

    def __init__(
        self,
        policy: SupportsInfer | InferFn,
        metadata: Mapping[str, Any] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        api_key: str | None = None,
        max_message_bytes: int | None = DEFAULT_MAX_MESSAGE_BYTES,
        concurrency: int | None = 1,
        ping_interval_s: float | None = 20.0,
        ping_timeout_s: float | None = 20.0,
        debug_errors: bool = False,
    ) -> None:
        if isinstance(policy, SupportsInfer):
            self._infer_fn: InferFn = policy.infer
        elif callable(policy):
            self._infer_fn = policy
        else:
            raise TypeError(f"policy must have an infer(obs) method or be callable, got {type(policy).__name__}")
        if concurrency is not None and concurrency < 1:
            raise ValueError(f"concurrency must be >= 1 or None, got {concurrency}")
        if max_message_bytes is not None and max_message_bytes < 1:
            raise ValueError(f"max_message_bytes must be >= 1 or None, got {max_message_bytes}")
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._metadata_frame = encode(self.metadata)  # fail early on unencodable metadata
        self.host = host
        self.port = port
        self._api_key = api_key
        self._max_message_bytes = max_message_bytes
        self._concurrency = concurrency
        self._ping_interval_s = ping_interval_s
        self._ping_timeout_s = ping_timeout_s
        self._debug_errors = debug_errors
        self._warned_unused_key = False

        self.num_requests = 0  # successful replies, all connections
        self.num_errors = 0
        self._semaphore: asyncio.Semaphore | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    # ------------------------------------------------------------------ running

    def serve_forever(self) -> None:
        """Serve on the calling thread until interrupted (Ctrl-C) or :meth:`stop`."""
        try:
            asyncio.run(self._main())
        except KeyboardInterrupt:
            logger.info("openpi server on %s:%d interrupted", self.host, self.port)

    def start(self, timeout_s: float = 10.0) -> OpenpiServer:
        """Run on a daemon thread; returns once listening (so :attr:`port` is final)."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._ready.clear()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="openpi-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise TimeoutError(f"openpi server did not start listening within {timeout_s}s")
        if self._startup_error is not None:
            self._thread.join(timeout_s)
            self._thread = None
            raise self._startup_error
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving (closes open connections with 1001) and join the thread; idempotent."""
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # loop closed meanwhile
                pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
            self._thread = None

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the background server stops (or ``timeout_s``); True if it stopped."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout_s)
        return not thread.is_alive()

    def __enter__(self) -> OpenpiServer:
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        self._semaphore = asyncio.Semaphore(self._concurrency) if self._concurrency else None
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self._concurrency or 32, thread_name_prefix="openpi-infer"
        )
        # decoding and encoding run here, off the event loop: a large message must not freeze
        # the other connections, /healthz and keepalives
        self._codec = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="openpi-codec")
        try:
            async with ws_server.serve(
                self._handle,
                self.host,
                self.port,
                compression=None,
                max_size=self._max_message_bytes,
                max_queue=MAX_QUEUE,  # frames buffered per connection while busy, each <= max_size
                process_request=self._process_request,
                ping_interval=self._ping_interval_s,
                ping_timeout=self._ping_timeout_s,
            ) as server:
                self.port = server.sockets[0].getsockname()[1]
                logger.info(
                    "openpi server listening on ws://%s:%d (concurrency=%s, auth=%s)",
                    self.host,
                    self.port,
                    self._concurrency,
                    "api-key" if self._api_key else "none",
                )
                self._ready.set()
                await self._stop_event.wait()
        except BaseException as exc:
            if not self._ready.is_set():
                self._startup_error = exc
                self._ready.set()
                return
            raise
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._codec.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ protocol

    def _process_request(self, connection: ws_server.ServerConnection, request: Any) -> Any:
        """Health check before the upgrade; API key check on every other request."""
        if request.path.split("?", 1)[0] == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "OK\n")
        supplied_all = request.headers.get_all("Authorization")
        if len(supplied_all) > 1:
            return connection.respond(http.HTTPStatus.BAD_REQUEST, "Bad request: more than one Authorization header\n")
        if self._api_key is None:
            if supplied_all and not self._warned_unused_key:
                self._warned_unused_key = True
                logger.warning(
                    "openpi server: a client sent an API key, but this server checks none (start it with "
                    "--token to require one); connections are not authenticated"
                )
        else:
            supplied = supplied_all[0] if supplied_all else ""
            expected = f"Api-Key {self._api_key}"
            if not hmac.compare_digest(
                supplied.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
            ):
                logger.warning(
                    "openpi server: refused connection from %s: bad or missing API key", connection.remote_address
                )
                return connection.respond(http.HTTPStatus.UNAUTHORIZED, "Unauthorized: missing or invalid API key\n")
        return None

    async def _handle(self, websocket: ws_server.ServerConnection) -> None:
        peer = websocket.remote_address
        logger.info("openpi connection from %s opened", peer)
        loop = asyncio.get_running_loop()
        await websocket.send(self._metadata_frame)
        prev_total_s: float | None = None
        while True:
            start = time.monotonic()
            try:
                message = await websocket.recv()
            except websockets.ConnectionClosed:
                logger.info("openpi connection from %s closed", peer)
                return
            try:
                if isinstance(message, str):
                    raise OpenpiProtocolError("expected a binary frame (msgpack-numpy observation), got a text frame")
                obs = await loop.run_in_executor(self._codec, _decode_request, message)
                if not isinstance(obs, dict):
                    raise OpenpiProtocolError(f"observation must be a map, got {type(obs).__name__}")
                infer_s, result = await self._run_inference(loop, obs)
                if not isinstance(result, Mapping):
                    raise TypeError(f"policy.infer returned {type(result).__name__}, expected a dict")
                reply = dict(result)  # never mutate the policy's own dict
                timing: dict[str, float] = {"infer_ms": infer_s * 1000}
                if prev_total_s is not None:
                    timing["prev_total_ms"] = prev_total_s * 1000
                reply["server_timing"] = timing
                frame = await loop.run_in_executor(self._codec, encode, reply)
            except Exception as exc:
                self.num_errors += 1
                # the traceback stays in this log; a client gets it only with debug_errors
                text = traceback.format_exc() if self._debug_errors else f"{type(exc).__name__}: {exc}"
                logger.exception("openpi server: inference failed for %s", peer)
                try:
                    await websocket.send(text)
                    await websocket.close(
                        code=CloseCode.INTERNAL_ERROR,
                        reason="Internal server error. Traceback included in previous frame.",
                    )
                except websockets.ConnectionClosed:
                    pass
                return
            try:
                await websocket.send(frame)
            except websockets.ConnectionClosed:
                logger.info("openpi connection from %s closed before its reply was sent", peer)
                return
            self.num_requests += 1
            prev_total_s = time.monotonic() - start

    async def _run_inference(self, loop: asyncio.AbstractEventLoop, obs: dict[str, Any]) -> tuple[float, Any]:
        assert self._executor is not None
        if self._semaphore is None:
            return await loop.run_in_executor(self._executor, self._timed_infer, obs)
        async with self._semaphore:
            return await loop.run_in_executor(self._executor, self._timed_infer, obs)

    def _timed_infer(self, obs: dict[str, Any]) -> tuple[float, Any]:
        start = time.monotonic()
        result = self._infer_fn(obs)
        return time.monotonic() - start, result


def _decode_request(message: bytes) -> Any:
    return decode(message, max_bytes=None)  # size bounded by websockets' max_size


# ---------------------------------------------------------------------- command line


def _load_policy(spec: str, kwargs: dict[str, Any]) -> SupportsInfer | InferFn:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise SystemExit(f"--policy must look like 'package.module:factory', got {spec!r}")
    factory = importlib.import_module(module_name)
    for part in attr.split("."):
        factory = getattr(factory, part)
    return factory(**kwargs)


def main(argv: list[str] | None = None) -> None:
    """``python -m arena_openpi.server``: serve ``module:factory(**policy_args)``."""
    parser = argparse.ArgumentParser(prog="python -m arena_openpi.server", description=main.__doc__)
    parser.add_argument(
        "--policy",
        required=True,
        help="module:factory; factory(**policy_args) returns an object with infer(obs) or a function",
    )
    parser.add_argument("--policy-args", default="{}", help="JSON object of keyword arguments for the factory")
    parser.add_argument("--metadata", default="{}", help="JSON object sent as the metadata frame")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int_arg(*PORT_RANGE), default=8000, help="0 picks a free port (see --port-file)")
    parser.add_argument("--port-file", help="write the bound port here once listening (atomic)")
    parser.add_argument(
        "--token",
        default=os.environ.get("OPENPI_API_KEY"),
        help="require 'Authorization: Api-Key TOKEN' (default: $OPENPI_API_KEY)",
    )
    parser.add_argument("--concurrency", type=int, default=1, help="max simultaneous inferences; 0 = unlimited")
    parser.add_argument("--max-message-bytes", type=int_arg(1), default=DEFAULT_MAX_MESSAGE_BYTES)
    parser.add_argument(
        "--debug-errors", action="store_true", help="send clients the full traceback of a failure (default: one line)"
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    policy = _load_policy(args.policy, json.loads(args.policy_args))
    server = OpenpiServer(
        policy,
        json.loads(args.metadata),
        host=args.host,
        port=args.port,
        api_key=args.token or None,
        max_message_bytes=args.max_message_bytes,
        concurrency=args.concurrency or None,
        debug_errors=args.debug_errors,
    )
    server.start()
    if args.port_file:
        write_port_file(args.port_file, server.port)
    try:
        while not server.wait(0.5):  # short joins keep Ctrl-C responsive
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def write_port_file(path: str, port: int) -> None:
    """Write the bound port for whoever started the server with ``--port 0`` (atomically: never half a number)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        fh.write(str(port))
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
