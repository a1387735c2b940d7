"""One error hierarchy for every remote family; each also derives from the closest builtin.

``RemoteConnectionError`` is a ``ConnectionError`` and ``RemoteTimeoutError`` a
``TimeoutError``, so :mod:`arena.remote.retry` and generic handlers recognise them; codec
errors are ``ValueError``. Every class pickles with its attributes (errors cross process
and Ray boundaries). A family subclasses these (``OpenvlaServerError(RemoteServerError)``)
to add its name to messages. Imports nothing from arena.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "RemoteError",
    "RemoteProtocolError",
    "RemoteCodecError",
    "MessageTooLargeError",
    "RemoteServerError",
    "RemoteConnectionError",
    "RemoteTimeoutError",
    "RemoteAuthError",
]


def _rebuild(cls: type, args: tuple, kwargs: dict) -> Exception:
    return cls(*args, **kwargs)


class RemoteError(Exception):
    """Base of every error a remote family raises about its server or its messages."""


class RemoteProtocolError(RemoteError):
    """The peer sent something that does not follow the protocol."""


class RemoteCodecError(RemoteProtocolError, ValueError):
    """A message could not be encoded or decoded."""


class MessageTooLargeError(RemoteCodecError):
    """A message exceeds the configured size limit; refused before decoding it."""

    def __init__(self, size: int, limit: int, hint: str = "raise the message limit on both sides") -> None:
        self.size, self.limit, self.hint = size, limit, hint
        super().__init__(
            f"message of {size} bytes exceeds the limit of {limit} bytes ({limit / 2**20:.1f} MiB); "
            f"{hint} if this is expected"
        )

    def __reduce__(self) -> Any:
        return (type(self), (self.size, self.limit, self.hint))


class RemoteServerError(RemoteError):
    """The server answered with an error; ``message`` is its text verbatim."""

    protocol = "remote"

    def __init__(self, message: str, *, endpoint: str = "") -> None:
        self.message, self.endpoint = message, endpoint
        where = f" at {endpoint}" if endpoint else ""
        super().__init__(f"{self.protocol} server{where} failed: {message}")

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), (self.message,), {"endpoint": self.endpoint}))


class RemoteConnectionError(RemoteError, ConnectionError):
    """No usable reply from a server after all attempts (unreachable, dead, or refusing)."""

    def __init__(self, message: str, *, endpoint: str = "", attempts: int = 0, elapsed_s: float = 0.0) -> None:
        self.endpoint, self.attempts, self.elapsed_s = endpoint, attempts, elapsed_s
        super().__init__(message)  # one argument: OSError must not read it as (errno, strerror)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> Any:
        kwargs = {"endpoint": self.endpoint, "attempts": self.attempts, "elapsed_s": self.elapsed_s}
        return (_rebuild, (type(self), self.args[:1], kwargs))


class RemoteTimeoutError(RemoteConnectionError, TimeoutError):
    """No reply within the timeout (the server may be busy, dead, or unreachable)."""


class RemoteAuthError(RemoteConnectionError):
    """The server (or a gateway in front of it) refused the token: never retried."""
