"""Exceptions raised by the openpi protocol layer.

Every error derives from :class:`OpenpiError` so callers can catch the whole family, and
also from the closest builtin (``ValueError``, ``ConnectionError``, ``TimeoutError``) so
generic handlers keep working.
"""

from __future__ import annotations


class OpenpiError(Exception):
    """Base class of every error raised by ``arena_openpi``."""


class OpenpiCodecError(OpenpiError, ValueError):
    """A value cannot be encoded, or bytes are not valid msgpack-numpy."""


class OpenpiMessageTooLargeError(OpenpiError, ValueError):
    """A message exceeds a configured size limit (ours or the peer's, close code 1009)."""


class OpenpiProtocolError(OpenpiError):
    """The peer broke the openpi framing (e.g. a reply that is not a map)."""


class OpenpiConnectionError(OpenpiError, ConnectionError):
    """The server could not be reached, or the connection could not be re-established."""


class OpenpiAuthError(OpenpiConnectionError):
    """The server (or a gateway in front of it) refused our API key: HTTP 401/403."""


class OpenpiTimeoutError(OpenpiError, TimeoutError):
    """No reply arrived within the request timeout; the connection was dropped."""


class OpenpiServerError(OpenpiError):
    """The server's policy raised: the server sent its traceback as a TEXT frame.

    ``server_traceback`` holds the text exactly as the server sent it, so the real cause (which
    lives in the server process) is visible on the client side.
    """

    def __init__(self, server_traceback: str, *, endpoint: str = "") -> None:
        self.server_traceback = server_traceback
        self.endpoint = endpoint
        where = f" at {endpoint}" if endpoint else ""
        super().__init__(f"openpi server{where} failed during inference; server traceback:\n{server_traceback}")
