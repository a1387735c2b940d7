"""Hostile input and faults against the openpi codec, server and pool: each test reproduces one
finding of the security review and checks the bound that fixes it."""

from __future__ import annotations

import concurrent.futures
import threading
import time
import tracemalloc

import msgpack
import numpy as np
import pytest
from openpi_test_servers import ServerFactory

from arena_openpi import OpenpiServer
from arena_openpi.pool import OpenpiPool
from arena_openpi.wire.codec import DEFAULT_MAX_MESSAGE_BYTES, decode, encode
from arena_openpi.wire.errors import OpenpiCodecError, OpenpiConnectionError

pytestmark = pytest.mark.timeout(60)


def array_map(dtype: str, shape: list[int], data: bytes = b"") -> bytes:
    return msgpack.packb({b"__ndarray__": True, b"data": data, b"dtype": dtype, b"shape": shape}, use_bin_type=True)


def refused_peak(message: bytes, match: str) -> int:
    """Peak bytes traced while ``decode`` refuses ``message``."""
    tracemalloc.start()
    try:
        with pytest.raises(OpenpiCodecError, match=match):
            decode(message)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("dtype", ["|S0", "<U0", "|V0"])
def test_zero_width_dtypes_allocate_nothing(dtype: str) -> None:
    # 47 bytes that became 1.9 GB of uninitialised heap
    assert refused_peak(array_map(dtype, [10**9]), "zero-width|refuse|cannot") < 2**20


@pytest.mark.parametrize("dtype", ["<U99999999999999", "S-1", "float128x", "(2,3)f4", "\x00"])
def test_every_decoder_failure_is_the_documented_error(dtype: str) -> None:
    with pytest.raises(OpenpiCodecError):
        decode(array_map(dtype, [4], bytes(16)))


def test_containers_cannot_amplify_memory() -> None:
    empties = msgpack.packb([[] for _ in range(4 * 2**20)])  # 4 MiB that decoded to ~290 MB of lists
    assert refused_peak(empties, "max_objects") < 2**20
    assert refused_peak(b"\x91" * 5000 + b"\xc0", "max_depth") < 2**20


def test_the_default_limit_fits_one_observation() -> None:
    obs = {
        "observation/image": np.zeros((224, 224, 3), np.uint8),
        "observation/wrist_image": np.zeros((224, 224, 3), np.uint8),
    }
    assert len(encode(obs)) < DEFAULT_MAX_MESSAGE_BYTES == 16 * 2**20


def test_decoding_and_encoding_run_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    import arena_openpi.server as server_module

    threads: list[str] = []
    real_decode, real_encode = server_module.decode, server_module.encode

    def spy_decode(*a, **k):  # noqa: ANN002, ANN003, ANN202
        threads.append(threading.current_thread().name)
        return real_decode(*a, **k)

    monkeypatch.setattr(server_module, "decode", spy_decode)
    with OpenpiServer(lambda obs: {"actions": np.zeros((2, 2), np.float32)}, port=0) as server:
        from arena_openpi import OpenpiClient

        with OpenpiClient("127.0.0.1", server.port) as client:
            client.infer({"x": np.zeros(3, np.float32)})
    assert threads and all(name.startswith("openpi-codec") for name in threads)
    assert real_encode is server_module.encode


def test_the_per_connection_queue_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import arena_openpi.server as server_module

    seen = {}
    real_serve = server_module.ws_server.serve

    def spy(*a, **k):  # noqa: ANN002, ANN003, ANN202
        seen.update(k)
        return real_serve(*a, **k)

    monkeypatch.setattr(server_module.ws_server, "serve", spy)
    with OpenpiServer(lambda obs: {}, port=0, max_message_bytes=2**20):
        pass
    assert seen["max_queue"] == server_module.MAX_QUEUE <= 2 and seen["max_size"] == 2**20


def test_a_dead_server_is_reported_after_one_reconnect_window(servers: ServerFactory) -> None:
    """16 queued requests on 4 connections: one window for the outage, not one per queued request."""
    server = servers.ours()
    windows = []
    with OpenpiPool([("127.0.0.1", server.port)], connections_per_host=4, reconnect_deadline_s=1.0) as pool:
        for client in pool._pool.connections:
            real = client.infer

            def counted(obs, real=real):  # noqa: ANN001, ANN202
                t0 = time.monotonic()
                try:
                    return real(obs)
                finally:
                    windows.append(time.monotonic() - t0)

            client.infer = counted
        server.kill()
        futures = [pool.submit({"i": i}) for i in range(16)]
        done, _ = concurrent.futures.wait(futures, timeout=30)
    assert len(done) == 16
    assert all(isinstance(f.exception(), OpenpiConnectionError) for f in futures)
    # the requests that reached a connection each waited one window; every later one failed at once
    assert len(windows) <= 4
    assert any("no server replica left" in str(f.exception()) for f in futures)


def _http(port: int, headers: list[str]) -> str:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        lines = ["GET / HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket", "Connection: Upgrade",
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13", *headers]  # fmt: skip
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return s.recv(4096).decode("latin1")


def test_two_authorization_headers_get_a_4xx(caplog) -> None:  # noqa: ANN001
    with OpenpiServer(lambda obs: {}, port=0, api_key="k") as server:
        reply = _http(server.port, ["Authorization: Api-Key k", "Authorization: Api-Key other"])
    assert reply.startswith("HTTP/1.1 400"), reply.splitlines()[0]


def test_a_key_sent_to_a_server_without_one_is_warned_about(caplog) -> None:  # noqa: ANN001
    with caplog.at_level("WARNING", logger="arena_openpi.server"):
        with OpenpiServer(lambda obs: {}, port=0) as server:
            for _ in range(2):
                assert _http(server.port, ["Authorization: Api-Key k"]).startswith("HTTP/1.1 101")
    assert caplog.text.count("a client sent an API key, but this server checks none") == 1


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--max-message-bytes", "0"], "--max-message-bytes: expected an integer >= 1, got 0"),
        (["--port", "-1"], "--port: expected an integer in 0..65535, got -1"),
    ],
)
def test_serve_flags_that_mean_nothing_are_refused_at_startup(flags: list[str], message: str, capsys) -> None:  # noqa: ANN001
    from arena_openpi.serve import serve_command

    with pytest.raises(SystemExit) as exc:
        serve_command(["--policy", "zero", "--env", "debug/reach", *flags])
    assert exc.value.code == 2 and message in capsys.readouterr().err
