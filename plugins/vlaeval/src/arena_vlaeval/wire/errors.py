"""Errors of the vla-eval protocol layer: the kit's hierarchy with the family's name."""

from __future__ import annotations

from arena.remote.errors import (
    RemoteCodecError,
    RemoteConnectionError,
    RemoteError,
    RemoteProtocolError,
    RemoteServerError,
)

__all__ = [
    "VlaevalCodecError",
    "VlaevalConnectionError",
    "VlaevalError",
    "VlaevalProtocolError",
    "VlaevalServerError",
    "VlaevalSessionLost",
]


class VlaevalError(RemoteError):
    """Base of every error raised by ``arena_vlaeval``."""


class VlaevalCodecError(VlaevalError, RemoteCodecError):
    """Bytes that are not a vla-eval message, or a value the protocol cannot carry."""


class VlaevalProtocolError(VlaevalError, RemoteProtocolError):
    """The peer broke the protocol: an unexpected message type, a seq that does not echo ours."""


class VlaevalConnectionError(VlaevalError, RemoteConnectionError):
    """The server could not be reached or refused the WebSocket handshake."""


class VlaevalSessionLost(VlaevalConnectionError):
    """The session's connection dropped: its episode cannot go on (a new session never saw its start)."""


class VlaevalServerError(VlaevalError, RemoteServerError):
    """The server answered an ``error`` message (the connection stays open)."""
