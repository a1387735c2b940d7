"""arena-gr00t: NVIDIA Isaac-GR00T policy servers in arena.

Protocol layer (exported here): a byte-compatible msgpack codec (`codec`), a ZeroMQ
transport (`transport`), a robust client with replica fan-out (`client`), a reference server
(`server`) and plain-data observation helpers (`observation`).

arena integration (import the modules): the `gr00t` policy family (`policy`), mapping files
(`mapping`, packaged ones in `mappings/`), the key translator (`translator`), the
`arena-gr00t serve` reference server over any arena family (`serve`, `cli`) and the plugin
entry point (`plugin`). See docs/gr00t.md.
"""

from arena_gr00t.server import Gr00tHandler, Gr00tServer
from arena_gr00t.wire.client import Gr00tClient, build_request
from arena_gr00t.wire.codec import DEFAULT_MAX_MESSAGE_BYTES, ActionConfig, ModalityConfig, decode, encode
from arena_gr00t.wire.errors import (
    Gr00tCodecError,
    Gr00tConnectionError,
    Gr00tError,
    Gr00tMessageTooLargeError,
    Gr00tProtocolError,
    Gr00tServerError,
    Gr00tTimeoutError,
)
from arena_gr00t.wire.observation import (
    action_to_flat,
    action_to_nested,
    batch_size,
    concat_batches,
    flat_to_nested,
    is_flat,
    nested_to_flat,
    slice_batch,
    split_ranges,
)
from arena_gr00t.wire.transport import DEFAULT_PORT, parse_host, parse_hosts

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_PORT",
    "ActionConfig",
    "Gr00tClient",
    "Gr00tCodecError",
    "Gr00tConnectionError",
    "Gr00tError",
    "Gr00tHandler",
    "Gr00tMessageTooLargeError",
    "Gr00tProtocolError",
    "Gr00tServer",
    "Gr00tServerError",
    "Gr00tTimeoutError",
    "ModalityConfig",
    "action_to_flat",
    "action_to_nested",
    "batch_size",
    "build_request",
    "concat_batches",
    "decode",
    "encode",
    "flat_to_nested",
    "is_flat",
    "nested_to_flat",
    "parse_host",
    "parse_hosts",
    "slice_batch",
    "split_ranges",
]
