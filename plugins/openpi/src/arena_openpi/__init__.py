"""arena-openpi: talk to Physical Intelligence openpi policy servers (pi0, pi0.5).

Protocol layer only: msgpack-numpy codec (:mod:`~arena_openpi.codec`), a blocking WebSocket
client with reconnects (:class:`OpenpiClient`), a pool that spreads concurrent requests over
server replicas (:class:`OpenpiPool`) and a wire-compatible reference server
(:class:`OpenpiServer`). The arena ``Policy`` integration builds on these.
"""

from arena_openpi.client import DEFAULT_PORT, Health, OpenpiClient, healthz
from arena_openpi.codec import DEFAULT_MAX_MESSAGE_BYTES, decode, encode
from arena_openpi.errors import (
    OpenpiAuthError,
    OpenpiCodecError,
    OpenpiConnectionError,
    OpenpiError,
    OpenpiMessageTooLargeError,
    OpenpiProtocolError,
    OpenpiServerError,
    OpenpiTimeoutError,
)
from arena_openpi.pool import OpenpiPool, parse_hosts
from arena_openpi.server import OpenpiServer

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
