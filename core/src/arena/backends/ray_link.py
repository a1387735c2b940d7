"""The coordinator's end of the ZeroMQ link to one shard (the shard's end is in ``ray_shard``).

A DEALER socket connected to the shard's ROUTER. Each call is
``[token, seq, message]``; each reply ``[seq, status, payload]`` with
status ``ok`` (payload: a packed reply) or ``fail`` (payload: the error).
Replies come in call order; :meth:`drain` files whatever has arrived by
sequence number, so the loop can poll several shards without blocking.
Why not Ray calls: see :mod:`arena.backends.ray_shard`.
"""

from __future__ import annotations

from typing import Any

import zmq

__all__ = ["ShardLink"]


class ShardLink:
    """Calls to one shard and the replies received so far."""

    def __init__(self, ctx: zmq.Context, endpoint: str, token: bytes, max_reply_bytes: int) -> None:
        self.endpoint = endpoint
        self.token = token
        self.sock: Any = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.MAXMSGSIZE, max_reply_bytes)
        self.sock.connect(endpoint)
        self._seq = 0
        self.replies: dict[int, tuple[bytes, bytes]] = {}

    def send(self, message: bytes) -> int:
        """Start a call; returns its sequence number."""
        self._seq += 1
        self.sock.send_multipart([self.token, self._seq.to_bytes(8, "little"), message], copy=False)
        return self._seq

    def drain(self) -> bool:
        """File every reply that has arrived; True if there was one."""
        got = False
        while True:
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return got
            if len(frames) == 3:
                self.replies[int.from_bytes(frames[0], "little")] = (frames[1], frames[2])
                got = True

    def has(self, seq: int) -> bool:
        return seq in self.replies or (self.drain() and seq in self.replies)

    def take(self, seq: int) -> tuple[bytes, bytes]:
        return self.replies.pop(seq)

    def close(self) -> None:
        self.sock.close(0)
