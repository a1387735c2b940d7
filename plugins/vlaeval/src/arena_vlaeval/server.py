"""``arena-vlaeval serve``: any arena policy family behind vla-eval's WebSocket protocol.

Each WebSocket connection is one session and holds one slot of the served policy (so
per-episode state follows the session, as vla-eval's servers key it by connection); at
most ``max_batch`` sessions at once. ``episode_start`` resets the slot; observations from
all sessions that arrive within ``max_wait_s`` of the first are answered by one batched
``infer`` (vla-eval's ``max_wait_time`` idea; the wait ends as soon as every session inside
an episode has sent one, so a lone session never waits), each reply echoing its seq. A
served chunk of H > 1 steps is answered whole, (H, A), for the client to schedule; H = 1 as
one action (A,). The hello reply declares the env's conventions as vla-eval's
``action_spec`` / ``observation_spec``; ``GET /health`` answers 200.

Beyond a stock vla-eval server: 127.0.0.1 by default, a message size limit and bounded
decoding (:mod:`arena_vlaeval.wire.codec`), and an optional token (``Authorization: Bearer``,
checked at the handshake, before any message is read) that vla-eval's own client cannot
send. A message that is not a vla-eval message closes the session (1008, as upstream closes
it); an observation that does not fit gets an ``error`` reply and the session goes on.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from http import HTTPStatus
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from arena.remote.serving import ServedHandler, ServedPolicy
from arena_vlaeval.mapping import VlaevalMapping, VlaevalTranslator
from arena_vlaeval.wire.codec import DEFAULT_MAX_MESSAGE_BYTES, PROTOCOL_VERSION, decode, encode
from arena_vlaeval.wire.errors import VlaevalCodecError

__all__ = ["VlaevalServer", "server_specs"]

log = logging.getLogger(__name__)

#: messages up to this size (state, text) are decoded on the event loop; larger ones in a thread
_INLINE_BYTES = 64 << 10


def server_specs(translator: VlaevalTranslator, reads_images: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """(action_spec, observation_spec) in vla-eval's DimSpec form, from the env's conventions.

    ``image`` is declared only when the served policy reads a camera, so clients render nothing
    for a state-based policy.
    """
    spec, mapping = translator.spec, translator.mapping
    groups = {g.name: g for g in spec.action_groups}
    action = {
        name: {"name": name, "dims": groups[name].size, "format": groups[name].convention or "raw"}
        for name in translator.action_groups
    }
    obs: dict[str, Any] = {}
    if translator.images and reads_images:
        obs["image"] = {"name": "image", "dims": 0, "format": "rgb_hwc_uint8"}
    for key, k in translator.keys.items():
        if k.kind == "state":
            fmt = mapping.state_formats.get(key, "raw")
            obs[key] = {"name": key, "dims": int(k.shape[0]), "format": fmt}
    if translator.prompt_key:
        obs["language"] = {"name": "language", "dims": 0, "format": "language"}
    return action, obs


class _Batch:
    """Observations waiting for one batched infer."""

    def __init__(self) -> None:
        self.items: list[tuple[int, Any, asyncio.Future]] = []
        self.event = asyncio.Event()


class VlaevalServer(ServedHandler):
    """The served policy behind vla-eval sessions; :meth:`serve` runs until cancelled."""

    def __init__(
        self,
        served: ServedPolicy,
        mapping: VlaevalMapping,
        *,
        token: str | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_wait_s: float = 0.005,
        image_format: str = "png",
        infer_batch: int | None = None,
        image_keys: str = "policy",
    ) -> None:
        super().__init__(served, image_keys)
        self.translator = VlaevalTranslator(mapping, served.spec)
        if self.translator.problems:
            raise ValueError(
                f"mapping {mapping.source} does not fit {served.spec.name}: {'; '.join(self.translator.problems)}"
            )
        self.token = token
        self.max_message_bytes = max_message_bytes
        self.max_wait_s = max_wait_s
        self.image_format = image_format
        self.infer_batch = infer_batch or served.max_batch  # most observations one infer answers
        self.action_spec, self.observation_spec = server_specs(self.translator, bool(self.cameras))
        self.free = list(range(served.max_batch))
        self.sessions = 0
        self.in_episode = 0  # sessions inside an episode: the most observations a batch can wait for
        self.batches: list[int] = []  # size of each batched infer (diagnostics, tests)
        self._pending = _Batch()
        self.port = 0

    # -- HTTP: health and the token, before the WebSocket handshake ---------------------------------
    def _process_request(self, connection: ServerConnection, request: Any) -> Any:
        if request.path.split("?")[0] == "/health":
            return connection.respond(HTTPStatus.OK, '{"status": "ok"}\n')
        if self.token:
            sent = request.headers.get("Authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {self.token}".encode()):
                return connection.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong token\n")
        if not self.free:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, f"all {self.served.max_batch} sessions in use\n")
        return None

    # -- one session ---------------------------------------------------------------------------------
    async def _session(self, ws: ServerConnection) -> None:
        if not self.free:
            await ws.close(1013, "no free session")
            return
        slot = self.free.pop(0)
        self.sessions += 1
        in_episode = False
        try:
            async for data in ws:
                try:
                    if len(data) > _INLINE_BYTES:  # images: decode off the loop, other sessions go on meanwhile
                        kind, payload, seq = await asyncio.to_thread(decode, data, max_bytes=self.max_message_bytes)
                    else:
                        kind, payload, seq = decode(data, max_bytes=self.max_message_bytes)
                except VlaevalCodecError as exc:
                    log.warning("session %d: %s; closing it", slot, exc)
                    await ws.close(1008, str(exc)[:120])
                    return
                if kind == "hello":
                    await ws.send(encode("hello", self._hello(), seq))
                elif kind == "episode_start":
                    self.served.reset([slot])
                    self.in_episode += 0 if in_episode else 1
                    in_episode = True
                elif kind == "episode_end":
                    self.in_episode -= 1 if in_episode else 0
                    in_episode = False
                    self._pending.event.set()  # a batch waiting for this session's observation need not
                elif kind == "observation":
                    reply_kind, reply = await self._observe(slot, payload, in_episode)
                    await ws.send(encode(reply_kind, reply, seq, self.image_format))
                else:
                    log.warning("session %d: unexpected %s message ignored", slot, kind)
        except ConnectionClosed:
            pass
        finally:
            self.free.append(slot)
            self.sessions -= 1
            self.in_episode -= 1 if in_episode else 0
            self._pending.event.set()

    def _hello(self) -> dict[str, Any]:
        from arena_vlaeval import __version__

        return {
            "harness_version": f"arena-vlaeval {__version__}",
            "protocol_version": PROTOCOL_VERSION,
            "model_server": f"arena:{self.served.name}",
            "capabilities": {},
            "action_spec": self.action_spec,
            "observation_spec": self.observation_spec,
        }

    async def _observe(self, slot: int, payload: dict[str, Any], in_episode: bool) -> tuple[str, dict[str, Any]]:
        if not in_episode:
            return "error", {"error": "observation outside an episode: send episode_start first"}
        desc = self.served.description
        try:
            obs = self.translator.decode_observation(payload, list(desc.cameras), list(desc.state))
        except Exception as exc:  # noqa: BLE001 - the client's observation does not fit: an error reply
            return "error", {"error": f"observation_failed: {exc}"}
        future = asyncio.get_running_loop().create_future()
        self._pending.items.append((slot, obs, future))
        self._pending.event.set()
        try:
            actions = await future
        except Exception as exc:  # noqa: BLE001 - the served policy raised: an error reply, the session goes on
            return "error", {"error": f"observation_failed: {type(exc).__name__}: {exc}"}
        return "action", {"actions": self.translator.to_reply(actions)}

    # -- the batcher ---------------------------------------------------------------------------------
    async def _batcher(self) -> None:
        while True:
            await self._pending.event.wait()
            if not self._pending.items:  # woken by an episode end, nothing to answer
                self._pending.event.clear()
                continue
            # let the other sessions' observations arrive: up to max_wait_s, not once every session
            # that could send one has (one session never waits)
            deadline = asyncio.get_running_loop().time() + self.max_wait_s
            while len(self._pending.items) < min(self.in_episode, self.infer_batch):
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                self._pending.event.clear()
                try:
                    await asyncio.wait_for(self._pending.event.wait(), left)
                except asyncio.TimeoutError:
                    break
            batch, self._pending = self._pending, _Batch()
            items, rest = batch.items[: self.infer_batch], batch.items[self.infer_batch :]
            if rest:  # over the batch size: the rest go first into the next batch
                self._pending.items[:0] = rest
                self._pending.event.set()
            if not items:
                continue
            self.batches.append(len(items))
            try:
                chunks = await asyncio.to_thread(self._infer, items)
            except Exception as exc:  # noqa: BLE001 - delivered to every waiting session
                for _, _, f in items:
                    if not f.done():
                        f.set_exception(exc)
                continue
            for (_, _, f), chunk in zip(items, chunks):
                if not f.done():
                    f.set_result(chunk[0] if chunk.shape[0] == 1 else chunk)

    def _infer(self, items: list[tuple[int, Any, asyncio.Future]]) -> np.ndarray:
        from arena.contract import Observation

        obs = [o for _, o, _ in items]
        merged = Observation(
            images={c: np.concatenate([o.images[c] for o in obs]) for c in obs[0].images},
            state={g: np.concatenate([o.state[g] for o in obs]) for g in obs[0].state},
            instruction=[o.instruction[0] for o in obs],
            env_ids=np.arange(len(obs)),
        )
        return self.infer(merged, [s for s, _, _ in items])

    async def serve(self, host: str = "127.0.0.1", port: int = 8000, started: Any = None) -> None:
        """Serve until cancelled; ``started(port)`` is called once listening."""
        async with serve(
            self._session,
            host,
            port,
            process_request=self._process_request,
            compression=None,
            max_size=self.max_message_bytes,
            ping_interval=None,
        ) as server:
            self.port = server.sockets[0].getsockname()[1]
            if started is not None:
                started(self.port)
            await self._batcher()
