"""vla-eval's bytes against vla-eval's own codec, hostile messages, sessions: seq, token, health, drops."""

from __future__ import annotations

import io
import urllib.request

import msgpack
import numpy as np
import pytest
from arena_vlaeval.wire.codec import decode, encode
from arena_vlaeval.wire.errors import (
    VlaevalCodecError,
    VlaevalConnectionError,
    VlaevalProtocolError,
    VlaevalSessionLost,
)
from arena_vlaeval.wire.session import Session
from PIL import Image
from vla_eval.protocol.messages import Message, MessageType, pack_message, unpack_message
from vlaeval_helpers import ThreadServer

from arena.remote.errors import RemoteTimeoutError

pytestmark = pytest.mark.timeout(60)

IMG = np.arange(32 * 48 * 3, dtype=np.uint8).reshape(32, 48, 3)


@pytest.mark.parametrize("fmt", ["png", "raw"])
def test_vlaeval_reads_what_we_write_and_we_read_what_it_writes(fmt: str) -> None:
    from vla_eval.protocol import numpy_codec

    payload = {"images": {"cam": IMG}, "states": np.linspace(0, 1, 5, dtype=np.float32), "task_description": "go"}
    theirs = unpack_message(encode("observation", payload, 7, fmt))
    assert theirs.type == MessageType.OBSERVATION and theirs.seq == 7
    np.testing.assert_array_equal(theirs.payload["images"]["cam"], IMG)
    np.testing.assert_array_equal(theirs.payload["states"], payload["states"])
    numpy_codec.set_image_format(fmt)
    try:
        kind, ours, seq = decode(pack_message(Message(MessageType.OBSERVATION, payload, seq=3)))
    finally:
        numpy_codec.set_image_format("png")
    assert (kind, seq) == ("observation", 3)
    np.testing.assert_array_equal(ours["images"]["cam"], IMG)
    np.testing.assert_array_equal(ours["states"], payload["states"])


def _raw(message: dict) -> bytes:
    return msgpack.packb(message, use_bin_type=True)


def _png(h: int, w: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"a": {"__ndarray__": True, "data": b"\0" * 8, "dtype": "|O", "shape": [1]}}, "refused"),
        ({"a": {"__ndarray__": True, "data": b"\0" * 8, "dtype": "<f4", "shape": [1000, 1000]}}, "do not fit"),
        ({"a": {"__ndarray__": True, "data": b"\0" * 8, "dtype": "<f4", "shape": [-2]}}, "list of sizes"),
        ({"a": {"__image__": True, "format": "png", "data": _png(4000, 4000), "shape": [8, 8, 3]}}, "declared 8x8"),
        ({"a": {"__image__": True, "format": "png", "data": b"xx", "shape": [100000, 100000, 3]}}, "pixels refused"),
        ({"a": {"__image__": True, "format": "gif", "data": b"xx", "shape": [8, 8, 3]}}, "unknown format"),
        ({"a": {"__image__": True, "format": "png", "data": b"not a png", "shape": [8, 8, 3]}}, "not a valid png"),
    ],
)
def test_hostile_payloads_are_codec_errors_before_large_allocations(payload: dict, message: str) -> None:
    with pytest.raises(VlaevalCodecError, match=message):
        decode(_raw({"type": "observation", "payload": payload, "seq": 1, "timestamp": 0.0}))


def test_malformed_messages_name_what_is_wrong() -> None:
    with pytest.raises(VlaevalCodecError, match="unknown message type"):
        decode(_raw({"type": "shutdown", "payload": {}, "seq": 1, "timestamp": 0}))
    with pytest.raises(VlaevalCodecError, match="type, payload, seq"):
        decode(_raw([1, 2, 3]))
    with pytest.raises(VlaevalCodecError, match="exceeds the limit"):
        decode(b"\0" * 2048, max_bytes=1024)
    with pytest.raises(VlaevalCodecError, match="invalid message"):
        decode(b"\x91" * 100)  # nested one-element lists: past the depth limit


@pytest.fixture
def served():
    from arena_vlaeval.mapping import VlaevalMapping
    from arena_vlaeval.server import VlaevalServer

    from arena.remote.serving import ServedPolicy

    policy = ServedPolicy("expert", "metaworld/reach-v3", max_batch=2)
    mapping = VlaevalMapping.registered(policy.spec)
    running = ThreadServer(VlaevalServer(policy, mapping, token="s3cret"))
    yield running
    running.stop()
    policy.close()


def test_token_health_and_session_limit(served) -> None:
    with pytest.raises(VlaevalConnectionError, match="refused the session: HTTP 401"):
        Session("127.0.0.1", served.port, timeout_s=5)
    with urllib.request.urlopen(f"http://127.0.0.1:{served.port}/health", timeout=5) as r:
        assert r.status == 200 and b"ok" in r.read()
    a = Session("127.0.0.1", served.port, timeout_s=5, token="s3cret")
    b = Session("127.0.0.1", served.port, timeout_s=5, token="s3cret")
    assert a.server_info["action_spec"]["gripper"]["format"] == "binary_close_positive"
    with pytest.raises(VlaevalConnectionError, match="HTTP 503"):
        Session("127.0.0.1", served.port, timeout_s=5, token="s3cret")  # both slots taken
    a.close()
    b.close()


def test_an_observation_that_does_not_fit_is_an_error_reply_and_the_session_goes_on(served) -> None:
    from arena_vlaeval.wire.errors import VlaevalServerError

    s = Session("127.0.0.1", served.port, timeout_s=5, token="s3cret")
    with pytest.raises(VlaevalServerError, match="outside an episode"):
        s.act({"states": np.zeros(39, np.float32), "task_description": "x"})
    s.episode_start({"name": "t"})
    with pytest.raises(VlaevalServerError, match=r"states: expected shape \(39,\)"):
        s.act({"states": np.zeros(3, np.float32), "task_description": "x"})
    assert not s.lost
    s.close()


class _Peer:
    """A scripted server on a thread: answers hello, then does ``then`` with the next message."""

    def __init__(self, then: str) -> None:
        import asyncio
        import threading

        from websockets.asyncio.server import serve

        self.then = then
        ready = threading.Event()
        self.loop = asyncio.new_event_loop()

        async def handler(ws) -> None:  # noqa: ANN001
            async for data in ws:
                kind, payload, seq = decode(data)
                if kind == "hello":
                    await ws.send(encode("hello", {"protocol_version": 1}, seq))
                elif kind == "observation":
                    if self.then == "wrong_seq":
                        await ws.send(encode("action", {"actions": np.zeros(4, np.float32)}, seq + 5))
                    elif self.then == "close":
                        await ws.close()
                        return
                    elif self.then == "silent":
                        await asyncio.sleep(5)
                    else:  # a plain server declaring nothing
                        await ws.send(encode("action", {"actions": np.zeros(4, np.float32)}, seq))

        async def main() -> None:
            async with serve(handler, "127.0.0.1", 0) as server:
                self.port = server.sockets[0].getsockname()[1]
                ready.set()
                self.stop_event = asyncio.Event()
                await self.stop_event.wait()

        self.thread = threading.Thread(target=lambda: self.loop.run_until_complete(main()), daemon=True)
        self.thread.start()
        ready.wait(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(10)


@pytest.mark.parametrize(
    ("then", "error", "message"),
    [
        ("wrong_seq", VlaevalProtocolError, "seq mismatch: sent 2, the reply echoes 7"),
        ("close", VlaevalSessionLost, "dropped"),
        ("silent", RemoteTimeoutError, "no reply to observation within 0.5 s"),
    ],
)
def test_a_broken_session_is_over_and_says_why(then: str, error: type, message: str) -> None:
    peer = _Peer(then)
    try:
        s = Session("127.0.0.1", peer.port, timeout_s=0.5)
        with pytest.raises(error, match=message):
            s.act({"states": np.zeros(2, np.float32)})
        assert s.lost
        with pytest.raises(VlaevalSessionLost, match="was lost earlier"):
            s.act({"states": np.zeros(2, np.float32)})  # never silently reopened
    finally:
        peer.stop()


def test_a_server_declaring_no_conventions_is_said_so_at_preflight() -> None:
    from arena_vlaeval.policy import VlaevalConfig, VlaevalPolicy

    from arena.plugins import load_plugins
    from arena.run import make_env

    env, _ = make_env(load_plugins(), "metaworld/reach-v3", None, 1)
    env.close()
    peer = _Peer("ok")
    try:
        with VlaevalPolicy(VlaevalConfig(host=f"127.0.0.1:{peer.port}"), env.spec, 1) as policy:
            desc = policy.describe()
    finally:
        peer.stop()
    assert desc.problems == []
    assert desc.info["conventions"] == "the server declares none (action_spec, observation_spec): not checked"
