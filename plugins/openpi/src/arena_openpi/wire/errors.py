"""Exceptions raised by the openpi protocol layer.

Every error derives from :class:`OpenpiError` (a kit :class:`~arena.remote.errors.RemoteError`,
with the kit's class of the same kind beside it) so callers can catch the whole family, and
also from the closest builtin (``ValueError``, ``ConnectionError``, ``TimeoutError``) so
generic handlers keep working.
"""

from __future__ import annotations

from arena.remote.errors import (
    RemoteAuthError,
    RemoteCodecError,
    RemoteConnectionError,
    RemoteError,
    RemoteProtocolError,
    RemoteServerError,
)


class OpenpiError(RemoteError):
    """Base class of every error raised by ``arena_openpi``."""


class OpenpiCodecError(OpenpiError, RemoteCodecError):
    """A value cannot be encoded, or bytes are not valid msgpack-numpy."""


class OpenpiMessageTooLargeError(OpenpiError, ValueError):
    """A message exceeds a configured size limit (ours or the peer's, close code 1009)."""


class OpenpiProtocolError(OpenpiError, RemoteProtocolError):
    """The peer broke the openpi framing (e.g. a reply that is not a map)."""


class OpenpiConnectionError(OpenpiError, RemoteConnectionError):
    """The server could not be reached, or the connection could not be re-established."""


class OpenpiAuthError(OpenpiConnectionError, RemoteAuthError):
    """The server (or a gateway in front of it) refused our API key: HTTP 401/403."""


class OpenpiTimeoutError(OpenpiError, TimeoutError):
    """No reply arrived within the request timeout; the connection was dropped."""


class OpenpiServerError(OpenpiError, RemoteServerError):
    """The server's policy raised: the server sent its traceback as a TEXT frame.

    ``server_traceback`` holds the text exactly as the server sent it, so the real cause (which
    lives in the server process) is visible on the client side.
    """

    def __init__(self, server_traceback: str, *, endpoint: str = "") -> None:
        self.server_traceback = self.message = server_traceback
        self.endpoint = endpoint
        where = f" at {endpoint}" if endpoint else ""
        Exception.__init__(self, f"openpi server{where} failed during inference; server traceback:\n{server_traceback}")
