"""arena-openpi: talk to Physical Intelligence openpi policy servers (pi0, pi0.5).

Exported here is the protocol layer, usable without the rest of arena: msgpack-numpy codec
(:mod:`~arena_openpi.wire.codec`), a blocking WebSocket client with reconnects
(:class:`OpenpiClient`), a pool that spreads concurrent requests over server replicas
(:class:`OpenpiPool`) and a wire-compatible server (:class:`OpenpiServer`). The arena
integration lives in its own modules (imported by the ``arena`` entry point, not here):
:mod:`~arena_openpi.policy` (the ``openpi`` family), :mod:`~arena_openpi.mapping`,
:mod:`~arena_openpi.translator`, :mod:`~arena_openpi.layout` and :mod:`~arena_openpi.serve`.
"""

from arena_openpi.pool import OpenpiPool, parse_hosts
from arena_openpi.server import OpenpiServer
from arena_openpi.wire.client import DEFAULT_PORT, Health, OpenpiClient, healthz
from arena_openpi.wire.codec import DEFAULT_MAX_MESSAGE_BYTES, decode, encode
from arena_openpi.wire.errors import (
    OpenpiAuthError,
    OpenpiCodecError,
    OpenpiConnectionError,
    OpenpiError,
    OpenpiMessageTooLargeError,
    OpenpiProtocolError,
    OpenpiServerError,
    OpenpiTimeoutError,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_PORT",
    "Health",
    "OpenpiAuthError",
    "OpenpiClient",
    "OpenpiCodecError",
    "OpenpiConnectionError",
    "OpenpiError",
    "OpenpiMessageTooLargeError",
    "OpenpiPool",
    "OpenpiProtocolError",
    "OpenpiServer",
    "OpenpiServerError",
    "OpenpiTimeoutError",
    "decode",
    "encode",
    "healthz",
    "parse_hosts",
]
