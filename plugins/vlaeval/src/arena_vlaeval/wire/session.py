"""One vla-eval session: one WebSocket to one server, strictly one observation -> one action.

The server keys its per-episode state (chunk buffers, history) by connection, so an env
slot keeps its own session. A session that drops is over: it is never silently reopened
mid-episode (the new server session would not have seen ``episode_start``, which is what
vla-eval's own client does); :meth:`Session.act` raises :class:`VlaevalSessionLost` and the
caller reopens at the next episode start. Every reply must echo the seq of the message it
answers; anything else is a :class:`VlaevalProtocolError`.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Final

import websockets.sync.client
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from arena.remote.errors import RemoteTimeoutError
from arena.remote.hosts import host_label
from arena_vlaeval.wire.codec import DEFAULT_MAX_MESSAGE_BYTES, PROTOCOL_VERSION, decode, encode
from arena_vlaeval.wire.errors import (
    VlaevalConnectionError,
    VlaevalProtocolError,
    VlaevalServerError,
    VlaevalSessionLost,
)

__all__ = ["DEFAULT_PORT", "Session"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 8000
_PARAMS: Final = frozenset(inspect.signature(websockets.sync.client.connect).parameters)


class Session:
    """A connected, greeted session (``hello`` exchanged); ``server_info`` is the server's hello payload."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout_s: float = 60.0,
        token: str | None = None,
        image_format: str = "png",
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.endpoint = host_label(host, port)
        self.timeout_s = timeout_s
        self.image_format = image_format
        self.max_message_bytes = max_message_bytes
        self._seq = 0
        self.lost: str | None = None
        # direct (no proxy), and websockets >= 17.1's `legacy`: we own the connection's lifetime
        extra: dict[str, Any] = {k: v for k, v in (("proxy", None), ("legacy", True)) if k in _PARAMS}
        headers = {"Authorization": f"Bearer {token}"} if token else None
        try:
            self.ws = websockets.sync.client.connect(
                f"ws://{self.endpoint}",
                open_timeout=min(10.0, timeout_s),
                close_timeout=1.0,
                compression=None,
                max_size=max_message_bytes,
                additional_headers=headers,
                **extra,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise VlaevalConnectionError(
                f"vla-eval server at {self.endpoint} refused the session: HTTP {status}"
            ) from None
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            raise VlaevalConnectionError(f"vla-eval server at {self.endpoint} is not reachable ({exc})") from None
        try:
            kind, payload = self._call("hello", {"protocol_version": PROTOCOL_VERSION, "client": "arena"})
        except BaseException:
            self.close()
            raise
        if kind != "hello":
            self.close()
            raise VlaevalProtocolError(f"{self.endpoint}: expected a hello reply, got {kind!r}")
        self.server_info: dict[str, Any] = payload

    def _send(self, kind: str, payload: dict[str, Any]) -> int:
        if self.lost:
            raise VlaevalSessionLost(f"vla-eval session to {self.endpoint} was lost earlier: {self.lost}")
        self._seq += 1
        data = encode(kind, payload, self._seq, self.image_format)
        try:
            self.ws.send(data)
        except (ConnectionClosed, OSError) as exc:
            self._lose(f"{kind} could not be sent: {exc}")
        return self._seq

    def _lose(self, why: str) -> None:
        self.lost = why
        self.close()
        raise VlaevalSessionLost(f"vla-eval session to {self.endpoint} dropped: {why}")

    def _call(self, kind: str, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        seq = self._send(kind, payload)
        try:
            data = self.ws.recv(timeout=self.timeout_s)
        except TimeoutError:
            self.lost = f"no reply to {kind} within {self.timeout_s:g} s"
            self.close()
            raise RemoteTimeoutError(f"vla-eval server at {self.endpoint}: {self.lost}") from None
        except (ConnectionClosed, OSError) as exc:
            self._lose(f"closed while waiting for the reply to {kind} ({exc})")
        reply_kind, reply, reply_seq = decode(data, max_bytes=self.max_message_bytes)
        if reply_seq != seq:
            self.lost = f"seq mismatch: sent {seq}, the reply echoes {reply_seq}"
            self.close()
            raise VlaevalProtocolError(f"{self.endpoint}: {self.lost}")
        if reply_kind == "error":
            raise VlaevalServerError(f"vla-eval server at {self.endpoint}: {reply.get('error', reply)}")
        return reply_kind, reply

    def episode_start(self, task: dict[str, Any]) -> None:
        self._send("episode_start", {"task": task})

    def act(self, observation: dict[str, Any]) -> dict[str, Any]:
        """One observation -> the action payload (``{"actions": (A,) or (H, A)}``)."""
        kind, payload = self._call("observation", observation)
        if kind != "action":
            raise VlaevalProtocolError(f"{self.endpoint}: expected an action reply, got {kind!r}")
        return payload

    def episode_end(self, metrics: dict[str, Any], steps: int, elapsed_s: float) -> None:
        self._send("episode_end", {"metrics": metrics, "steps": int(steps), "elapsed_sec": float(elapsed_s)})

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001 - closing a broken socket
            log.debug("closing %s", self.endpoint, exc_info=True)
