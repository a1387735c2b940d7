"""The protocol kit: everything a remote policy family needs that is not its wire format.

* :mod:`~arena.remote.hosts`: the host grammar (``HOST``, ``HOST:PORT``, IPv6, replica lists);
* :mod:`~arena.remote.errors`: one error hierarchy (codec, too large, protocol, server,
  connection, timeout, auth), picklable, each also a builtin (``ConnectionError``, ...);
* :mod:`~arena.remote.retry`: retries with backoff under a deadline around a transport call;
* :mod:`~arena.remote.fanout`: :class:`ReplicaPool`, one request per observation over replicas,
  failover, a replica marked down after one failed reconnect window;
* :mod:`~arena.remote.keymap` and :mod:`~arena.remote.translate`: key mappings (TOML, by name)
  and the translator that resolves cameras, state groups and action groups against an env
  spec with one set of problem messages, and the image pipeline;
* :mod:`~arena.remote.mapfile`: reading mapping files, packaged registration
  (translator ``PREFIX:EMBODIMENT``), ``--mapping NAME|PATH``;
* :mod:`~arena.remote.policy`: :class:`RemotePolicy`, the template of a
  one-observation-per-request family, and its config fields;
* :mod:`~arena.remote.serving`: hosting any arena policy family behind a native server, and
  the ``arena-PROTOCOL serve`` command scaffold.

See docs/writing-a-protocol-family.md. ``hosts``, ``errors`` and ``retry`` import nothing
else from arena, so a family's wire layer may use them.
"""

from __future__ import annotations

from arena.remote.errors import (
    MessageTooLargeError,
    RemoteAuthError,
    RemoteCodecError,
    RemoteConnectionError,
    RemoteError,
    RemoteProtocolError,
    RemoteServerError,
    RemoteTimeoutError,
)
from arena.remote.fanout import ReplicaPool
from arena.remote.hosts import HostPort, host_label, parse_host, parse_hosts
from arena.remote.keymap import ImageEntry, KeyMapping, StateEntry
from arena.remote.policy import RemotePolicy, remote_fields
from arena.remote.retry import RetryPolicy
from arena.remote.translate import KeyTranslator

__all__ = [
    "HostPort",
    "parse_host",
    "parse_hosts",
    "host_label",
    "RemoteError",
    "RemoteProtocolError",
    "RemoteCodecError",
    "MessageTooLargeError",
    "RemoteServerError",
    "RemoteConnectionError",
    "RemoteTimeoutError",
    "RemoteAuthError",
    "RetryPolicy",
    "ReplicaPool",
    "KeyMapping",
    "ImageEntry",
    "StateEntry",
    "KeyTranslator",
    "RemotePolicy",
    "remote_fields",
]
