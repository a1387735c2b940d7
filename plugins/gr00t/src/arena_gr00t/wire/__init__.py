"""GR00T's wire: msgpack + npy codec, ZeroMQ REQ transport, client, errors, native batches.

Protocol facts only: nothing here imports arena but the kit's dependency-free modules
(``arena.remote.errors``, ``hosts``, ``retry``, ``msgpack_limits``).
"""
