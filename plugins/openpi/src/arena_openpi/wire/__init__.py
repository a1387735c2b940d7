"""openpi's wire: msgpack-numpy codec, WebSocket client, errors.

Protocol facts only: nothing here imports arena but the kit's dependency-free modules
(``arena.remote.errors``, ``msgpack_limits``).
"""
