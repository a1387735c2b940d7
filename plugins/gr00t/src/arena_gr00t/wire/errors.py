"""Exception hierarchy of the GR00T protocol layer.

Callers catch one base class (`Gr00tError`) or a precise subclass; connection problems also
derive from the builtin `ConnectionError` / `TimeoutError` so generic retry code recognises
them.
"""

from __future__ import annotations

from arena.remote.errors import (
    RemoteCodecError,
    RemoteConnectionError,
    RemoteError,
    RemoteProtocolError,
    RemoteServerError,
    RemoteTimeoutError,
)

__all__ = [
    "Gr00tError",
    "Gr00tCodecError",
    "Gr00tMessageTooLargeError",
    "Gr00tProtocolError",
    "Gr00tServerError",
    "Gr00tConnectionError",
    "Gr00tTimeoutError",
]


class Gr00tError(RemoteError):
    """Base class of every error raised by arena_gr00t."""


class Gr00tProtocolError(Gr00tError, RemoteProtocolError):
    """The peer sent something that does not follow the GR00T wire protocol."""


class Gr00tCodecError(Gr00tProtocolError, RemoteCodecError):
    """A message could not be encoded or decoded (bad msgpack, bad npy, unsupported type)."""


class Gr00tMessageTooLargeError(Gr00tCodecError):
    """A message exceeds the configured size limit; refused before decoding it."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"message of {size} bytes exceeds the limit of {limit} bytes "
            f"({limit / 2**20:.1f} MiB); raise max_message_bytes on both sides if this is expected"
        )

    def __reduce__(self):  # keep attributes across pickling (multiprocessing, Ray)
        return (type(self), (self.size, self.limit))


class Gr00tServerError(Gr00tError, RemoteServerError):
    """The server answered `{"error": message}`; `message` is the server's text verbatim."""

    def __init__(self, message: str, *, endpoint: str = "", address: str = "") -> None:
        self.message = message
        self.endpoint = endpoint
        self.address = address
        where = f" ({address}, endpoint {endpoint!r})" if address or endpoint else ""
        Exception.__init__(self, f"GR00T server error{where}: {message}")

    def __reduce__(self):
        return (_rebuild, (type(self), (self.message,), {"endpoint": self.endpoint, "address": self.address}))


class Gr00tConnectionError(Gr00tError, RemoteConnectionError):
    """No usable reply from a server after all attempts (unreachable, dead, or too slow)."""

    def __init__(
        self,
        message: str,
        *,
        host: str = "",
        port: int = 0,
        endpoint: str = "",
        attempts: int = 0,
        elapsed_s: float = 0.0,
    ) -> None:
        self.host = host
        self.port = port
        self.endpoint = endpoint
        self.attempts = attempts
        self.elapsed_s = elapsed_s
        # A single argument keeps OSError from reinterpreting it as (errno, strerror).
        Exception.__init__(self, message)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self):
        kwargs = {
            "host": self.host,
            "port": self.port,
            "endpoint": self.endpoint,
            "attempts": self.attempts,
            "elapsed_s": self.elapsed_s,
        }
        return (_rebuild, (type(self), self.args[:1], kwargs))


class Gr00tTimeoutError(Gr00tConnectionError, RemoteTimeoutError):
    """The server did not reply within the timeout (it may be busy, dead, or unreachable)."""


def _rebuild(cls: type, args: tuple, kwargs: dict) -> Exception:
    return cls(*args, **kwargs)
