"""Byte transport to one GR00T server: a ZeroMQ REQ socket that never wedges.

Kept apart from the client API (like httpx's transports) so that retries, replicas and the
message vocabulary live in `client.py`, and tests or other backends can plug in any object
satisfying `Transport`.

Why a socket is recreated after every failure: a REQ socket whose request timed out is stuck
waiting for that reply; the only clean way out is to close it with linger 0 (dropping whatever
is queued, so process exit never blocks) and connect a fresh one. ZeroMQ reconnects a live
socket to a restarted server by itself.
"""

from __future__ import annotations

import errno
import logging
import socket as _socket
import threading
import time
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import zmq

from arena.remote import hosts as _hosts
from arena.remote.hosts import HostPort, host_label, is_ipv6

__all__ = [
    "DEFAULT_PORT",
    "HostPort",
    "Transport",
    "TransportError",
    "TransportTimeout",
    "ZmqReqTransport",
    "parse_host",
    "parse_hosts",
    "host_label",
    "zmq_address",
]

log = logging.getLogger(__name__)

DEFAULT_PORT = 5555


# --------------------------------------------------------------------------- host specs
# The grammar is the kit's (arena.remote.hosts, dependency-free); GR00T also accepts tcp:// addresses.


def parse_host(spec: str | HostPort, default_port: int = DEFAULT_PORT) -> HostPort:
    """`"gpu-box"`, `"gpu-box:5556"`, `"tcp://10.0.0.2:5555"`, `"[::1]:5555"` -> (host, port)."""
    return _hosts.parse_host(spec, default_port, schemes=("tcp",))


def parse_hosts(spec: str | Sequence[str | HostPort], default_port: int = DEFAULT_PORT) -> list[HostPort]:
    """`"a:5555,b:5556"` (or a list of specs / tuples) -> [(host, port), ...], at least one."""
    return _hosts.parse_hosts(spec, default_port, schemes=("tcp",))


def zmq_address(host: str, port: int | str) -> str:
    return f"tcp://[{host}]:{port}" if is_ipv6(host) else f"tcp://{host}:{port}"


# --------------------------------------------------------------------------- transport


#: bytes libzmq accepts beyond a message limit, so a slightly oversized message still gets a
#: readable "too large" error reply; anything larger is cut off unread (the connection drops)
FRAME_SLACK = 64 * 1024


class TransportError(Exception):
    """The request got no reply (send failure, socket error, malformed reply frames)."""

    timed_out = False


class TransportTimeout(TransportError):
    """No reply within the timeout; the peer may be busy, dead, or unreachable."""

    timed_out = True


@runtime_checkable
class Transport(Protocol):
    """One request/reply channel to one server. Must be safe to call from one thread at a time."""

    host: str
    port: int

    def request(self, payload: bytes | memoryview, timeout_s: float) -> bytes | memoryview:
        """Send one message and return the one-frame reply; raise TransportError/Timeout.

        After raising, the transport must be ready for a fresh request.
        """
        ...

    def probe(self, timeout_s: float) -> str | None:
        """After failures: None if the server port accepts connections, else why not."""
        ...

    def close(self) -> None: ...


class ZmqReqTransport:
    """A REQ socket to `tcp://host:port` with per-request timeouts and reset-on-failure."""

    def __init__(self, host: str, port: int, *, context: zmq.Context, max_message_bytes: int | None = None) -> None:
        self.host = host
        self.port = port
        #: replies over this many bytes are cut off by libzmq before they are read (None: no limit)
        self.max_message_bytes = max_message_bytes
        self.address = zmq_address(host, port)
        self._context = context
        self._socket: zmq.Socket | None = None
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"ZmqReqTransport({self.address!r})"

    def _ensure_socket(self) -> zmq.Socket:
        if self._closed:
            raise TransportError(f"transport to {self.address} is closed")
        if self._socket is None:
            sock = self._context.socket(zmq.REQ)
            sock.setsockopt(zmq.LINGER, 0)
            if self.max_message_bytes is not None:
                sock.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes + FRAME_SLACK)
            if is_ipv6(self.host):
                sock.setsockopt(zmq.IPV6, 1)
            sock.connect(self.address)
            self._socket = sock
        return self._socket

    def _discard_socket(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def request(self, payload: bytes | memoryview, timeout_s: float) -> bytes | memoryview:
        with self._lock:
            sock = self._ensure_socket()
            deadline = time.monotonic() + timeout_s
            try:
                if not sock.poll(_ms(timeout_s), zmq.POLLOUT):
                    raise TransportTimeout(f"could not send to {self.address} within {timeout_s:.3g}s")
                # copy=False: large observations go to libzmq without another copy.
                sock.send(payload, flags=zmq.NOBLOCK, copy=False)
                if not sock.poll(_ms(deadline - time.monotonic()), zmq.POLLIN):
                    raise TransportTimeout(f"no reply from {self.address} within {timeout_s:.3g}s")
                frame = sock.recv(flags=zmq.NOBLOCK, copy=False)
                if frame.more:
                    raise TransportError(f"{self.address} replied with more than one frame")
                return frame.buffer
            except TransportError:
                self._discard_socket()
                raise
            except zmq.ZMQError as e:
                self._discard_socket()
                raise TransportError(f"socket error talking to {self.address}: {e}") from e

    def probe(self, timeout_s: float) -> str | None:
        try:
            with _socket.create_connection((self.host, self.port), timeout=timeout_s):
                return None
        except ConnectionRefusedError:
            return "connection refused (nothing listening on that port)"
        except TimeoutError:
            return f"TCP connect timed out after {timeout_s:.3g}s (host down or firewalled)"
        except OSError as e:
            if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
                return f"host unreachable ({e.strerror})"
            return f"{type(e).__name__}: {e}"

    def close(self) -> None:
        acquired = self._lock.acquire(timeout=5.0)
        try:
            self._discard_socket()
            self._closed = True
        finally:
            if acquired:
                self._lock.release()


def _ms(seconds: float) -> int:
    return max(0, int(seconds * 1000))
