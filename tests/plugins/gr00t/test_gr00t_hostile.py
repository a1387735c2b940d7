"""Hostile input against the GR00T codec, client and server: each test reproduces one finding of the
security review (it failed before the fix) and checks the bound that fixes it."""

from __future__ import annotations

import io
import os
import random
import socket
import threading
import time
import tracemalloc

import msgpack
import numpy as np
import pytest
import zmq

from arena_gr00t import Gr00tClient, Gr00tServer
from arena_gr00t.server import RCVHWM, UNAUTHORIZED
from arena_gr00t.wire import codec
from arena_gr00t.wire.codec import decode, encode, ndarray_to_npy, npy_to_ndarray
from arena_gr00t.wire.errors import Gr00tCodecError, Gr00tTimeoutError
from arena_gr00t.wire.transport import FRAME_SLACK

pytestmark = pytest.mark.timeout(60)


def rss_mb(pid: int | None = None) -> float:
    with open(f"/proc/{pid or os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def npy_header(text: str) -> bytes:
    """A v1.0 npy header holding ``text`` (and no data)."""
    body = text.ljust(117) + "\n"
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body.encode()


def npz_bomb(mb: int) -> bytes:
    """A ZIP (.npz) archive of an mb-MiB zero array: a few KiB on the wire."""
    buf = io.BytesIO()
    np.savez_compressed(buf, a=np.zeros(mb * 2**20, np.uint8))
    return buf.getvalue()


class Handler:
    def __init__(self) -> None:
        self.seen: list = []

    def get_modality_config(self) -> dict:
        return {}

    def get_action(self, observation, options=None):  # noqa: ANN001, ANN201
        self.seen.append(observation)
        return {"x": np.zeros((1, 1, 1), np.float32)}, {}

    def reset(self, options=None) -> dict:  # noqa: ANN001
        return {}


def test_an_npz_archive_is_refused_where_npy_is_expected() -> None:
    bomb = npz_bomb(256)
    assert len(bomb) < 512 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(Gr00tCodecError, match="npy magic"):
            npy_to_ndarray(bomb)
        assert tracemalloc.get_traced_memory()[1] < 8 * len(bomb)  # not inflated (it was 1 GB and 33 s)
    finally:
        tracemalloc.stop()
    hostile = msgpack.packb(
        {
            "endpoint": "get_action",
            "data": {"observation": {"state": {"arm": {"__ndarray_class__": True, "as_npy": bomb}}}},
        },
        use_bin_type=True,
    )
    handler = Handler()
    server = Gr00tServer(handler, port=0)
    try:
        reply = msgpack.unpackb(server.handle_message(hostile), raw=False)
    finally:
        server.close()
    assert "npy magic" in reply["error"] and handler.seen == []


def test_a_reply_with_an_npz_is_refused_by_the_client_side_decoder() -> None:
    reply = msgpack.packb([{"arm": {"__ndarray_class__": True, "as_npy": npz_bomb(64)}}, {}], use_bin_type=True)
    with pytest.raises(Gr00tCodecError, match="npy magic"):
        decode(reply)


@pytest.mark.parametrize(
    "payload, message",
    [
        (npy_header("{'descr': '|O', 'fortran_order': False, 'shape': (3,), }"), "objects"),
        (npy_header("{'descr': '|S0', 'fortran_order': False, 'shape': (1000000000,), }"), "zero-width"),
        (ndarray_to_npy(np.zeros(4, np.float32))[:-4], "data bytes follow"),
        (b"PK\x03\x04" + bytes(100), "npy magic"),
    ],
)
def test_only_well_formed_npy_decodes(payload: bytes, message: str) -> None:
    with pytest.raises(Gr00tCodecError, match=message):
        npy_to_ndarray(payload)


def test_decoded_arrays_are_always_ndarrays() -> None:
    arr = np.arange(12, dtype=np.int16).reshape(3, 4)
    for a in (arr, np.asfortranarray(arr), np.zeros((0, 3), np.float64), np.array([(1, 2.0)], "i4,f8")):
        out = npy_to_ndarray(ndarray_to_npy(a))
        assert type(out) is np.ndarray and np.array_equal(out, a)


def refused_peak(message: bytes, match: str) -> int:
    """Peak bytes traced while ``decode`` refuses ``message``."""
    tracemalloc.start()
    try:
        with pytest.raises(Gr00tCodecError, match=match):
            decode(message)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_containers_cannot_amplify_memory() -> None:
    empties = msgpack.packb([[] for _ in range(4 * 2**20)])  # 4 MiB of empty lists (~290 MB decoded before)
    assert refused_peak(empties, "max_objects") < 2**20
    nested = msgpack.packb([[[] for _ in range(9_000)], [[] for _ in range(9_000)]])
    assert refused_peak(nested, "max_objects") < 2**20


def test_the_token_is_checked_before_the_request_is_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    handler = Handler()
    server = Gr00tServer(handler, port=0, api_token="right")
    decoded = []
    monkeypatch.setattr("arena_gr00t.server.decode", lambda *a, **k: decoded.append(1) or {})
    try:
        obs = {"state": {"arm": np.zeros((64, 1, 1000), np.float32)}}
        for token in (None, "wrong", 42):
            request = {"endpoint": "get_action", "data": {"observation": obs}}
            if token is not None:
                request["api_token"] = token
            reply = msgpack.unpackb(server.handle_message(encode(request)), raw=False)
            assert reply == {"error": UNAUTHORIZED}
        assert decoded == []  # refused before any decoding
    finally:
        server.close()


def test_the_server_socket_bounds_what_libzmq_may_queue() -> None:
    server = Gr00tServer(Handler(), port=0, max_message_bytes=2**20)
    try:
        assert server._socket.getsockopt(zmq.RCVHWM) == RCVHWM
        assert server._socket.getsockopt(zmq.MAXMSGSIZE) == 2**20 + FRAME_SLACK
        assert server._socket.type == zmq.ROUTER
    finally:
        server.close()


def test_the_header_cache_keeps_only_canonical_headers_of_valid_payloads() -> None:
    codec._decode_header_cache.clear()
    for i in range(200):  # attacker-chosen (padded, 64 KiB) headers on invalid and on valid payloads
        text = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({i + 1},), }}".ljust(60000) + "\n"
        header = b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode()
        with pytest.raises(Gr00tCodecError):
            npy_to_ndarray(header + bytes(3))
        npy_to_ndarray(header + bytes(4 * (i + 1)))  # valid, but not what np.save writes
    assert len(codec._decode_header_cache) == 0
    npy_to_ndarray(ndarray_to_npy(np.zeros(5, np.float32)))
    assert len(codec._decode_header_cache) == 1


def test_the_client_cuts_off_replies_over_its_limit() -> None:
    ctx = zmq.Context()
    rep = ctx.socket(zmq.REP)
    port = rep.bind_to_random_port("tcp://127.0.0.1")

    def answer() -> None:
        if rep.poll(5000):
            rep.recv()
            rep.send(msgpack.packb({"blob": bytes(4 * 2**20)}, use_bin_type=True))

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        with Gr00tClient([("127.0.0.1", port)], timeout_s=1.5, retries=0, max_message_bytes=2**20) as c:
            transport = c._transports[0]
            with pytest.raises(Gr00tTimeoutError):
                c.ping()  # the 4 MiB reply is dropped by libzmq unread
            assert transport.max_message_bytes == 2**20
    finally:
        thread.join(5)
        rep.close(linger=0)
        ctx.term()


def test_a_garbage_tcp_peer_makes_no_reply_disappear(spawn_server) -> None:
    sp = spawn_server(tag="garbage")
    stop = threading.Event()
    rng = random.Random(0)

    def garbage() -> None:
        while not stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", sp.port), timeout=1) as s:
                    s.sendall(rng.randbytes(rng.randint(1, 300)))
                    # a ZMTP greeting-looking prefix, then junk frames
                    s.sendall(b"\xff" + bytes(8) + b"\x01\x7f" + rng.randbytes(64))
                    time.sleep(0.005)
            except OSError:
                time.sleep(0.01)

    def envelope_breaker() -> None:  # ZMTP peers whose messages are not REQ requests
        ctx = zmq.Context()
        dealer = None
        try:
            while not stop.is_set():
                if dealer is None or rng.random() < 0.2:
                    if dealer is not None:
                        dealer.close(linger=0)
                    dealer = ctx.socket(zmq.DEALER)
                    dealer.connect(f"tcp://127.0.0.1:{sp.port}")
                dealer.send_multipart(rng.choice([[b"junk"], [b"", b"a", b"b"], [b"x", b"", b"\xc1"], [b"", b"\x80"]]))
                time.sleep(0.002)
        finally:
            if dealer is not None:
                dealer.close(linger=0)
            ctx.term()

    threads = [threading.Thread(target=f, daemon=True) for f in (garbage, garbage, envelope_breaker)]
    for t in threads:
        t.start()
    lost = 0
    try:
        with Gr00tClient([("127.0.0.1", sp.port)], timeout_s=2.0, retries=0) as c:
            for _ in range(40):
                try:
                    assert c.ping()["status"] == "ok"
                except Gr00tTimeoutError:
                    lost += 1
    finally:
        stop.set()
        for t in threads:
            t.join(5)
    assert lost == 0


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--port", "70000"], "--port: expected an integer in 0..65535, got 70000"),
        (["--max-message-bytes", "0"], "--max-message-bytes: expected an integer >= 1, got 0"),
        (["--max-message-bytes", "-1"], "--max-message-bytes: expected an integer >= 1, got -1"),
    ],
)
def test_serve_flags_that_mean_nothing_are_refused_at_startup(flags: list[str], message: str, capsys) -> None:  # noqa: ANN001
    from arena_gr00t.serve import serve_command

    with pytest.raises(SystemExit) as exc:
        serve_command(["--policy", "zero", "--env", "debug/reach", *flags])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_a_client_port_out_of_range_names_the_flag() -> None:
    from arena.errors import ConfigError
    from arena_gr00t.policy import Gr00tConfig

    with pytest.raises(ConfigError, match="--port: expected an integer in 1..65535, got 70000"):
        Gr00tConfig(port=70000)


def test_a_token_sent_to_a_server_without_one_is_warned_about(caplog) -> None:  # noqa: ANN001
    server = Gr00tServer(Handler(), port=0)
    try:
        with caplog.at_level("WARNING", logger="arena_gr00t.server"):
            for _ in range(3):
                reply = msgpack.unpackb(
                    server.handle_message(encode({"endpoint": "ping", "api_token": "t"})), raw=False
                )
                assert reply["status"] == "ok"
    finally:
        server.close()
    assert caplog.text.count("a client sent an API token, but this server has none") == 1


def test_a_container_as_a_top_level_key_is_a_malformed_request_not_a_crash() -> None:
    """Found by bench/fuzz_servers.py: the token peek raised on a map key that is itself a map."""
    from arena.remote.msgpack_limits import peek_str

    message = b"\x82\x81\xa1a\x01\xa1b\xa8endpoint\xa4ping"  # {{"a": 1}: "b", "endpoint": "ping"}
    assert peek_str(message, "api_token") is None
    for token in (None, "t"):
        server = Gr00tServer(Handler(), port=0, api_token=token)
        try:
            reply = msgpack.unpackb(server.handle_message(message), raw=False)
        finally:
            server.close()
        assert "error" in reply
