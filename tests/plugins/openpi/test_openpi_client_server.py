"""Our client against our reference server, each server in its own process on 127.0.0.1."""

from __future__ import annotations

import inspect
import pathlib
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np
import pytest
import websockets.sync.client
from openpi_test_servers import ServerFactory, ServerProcess, free_port
from websockets.exceptions import ConnectionClosedError

from arena_openpi import (
    OpenpiAuthError,
    OpenpiClient,
    OpenpiConnectionError,
    OpenpiMessageTooLargeError,
    OpenpiServerError,
    OpenpiTimeoutError,
    decode,
    encode,
    healthz,
)

pytestmark = pytest.mark.timeout(30)

METADATA = {"reset_pose": [0.0, 0.1, 0.2], "action_horizon": 10}
SERVER_LIMIT = 1 << 20  # the shared server refuses messages over 1 MiB


def libero_obs(i: int) -> dict[str, Any]:
    rng = np.random.default_rng(i)
    return {
        "observation/image": rng.integers(0, 255, (224, 224, 3), dtype=np.uint8),
        "observation/wrist_image": rng.integers(0, 255, (224, 224, 3), dtype=np.uint8),
        "observation/state": np.full(8, i, dtype=np.float32),
        "prompt": f"task {i}",
        "id": i,
    }


@pytest.fixture(scope="module")
def shared(module_servers: ServerFactory) -> ServerProcess:
    return module_servers.ours(metadata=METADATA, max_message_bytes=SERVER_LIMIT, debug_errors=True)


def client_for(port: int, **kwargs: Any) -> OpenpiClient:
    kwargs.setdefault("reconnect_deadline_s", 5.0)
    return OpenpiClient("127.0.0.1", port, **kwargs)


def test_metadata_frame_and_results(shared: ServerProcess) -> None:
    with client_for(shared.port) as client:
        assert client.metadata == METADATA
        for i in range(3):
            obs = libero_obs(i)
            result = client.infer(obs)
            assert result["id"] == i and result["prompt"] == f"task {i}"
            assert result["image_sum"] == int(obs["observation/image"].astype(np.int64).sum())
            assert result["actions"].shape == (10, 7) and result["actions"].dtype == np.float32
            np.testing.assert_array_equal(result["actions"][0], np.full(7, i, dtype=np.float32))
            timing = result["server_timing"]
            assert timing["infer_ms"] >= 0
            assert ("prev_total_ms" in timing) == (i > 0)  # from the 2nd request of a connection on


def test_raw_protocol_frames(shared: ServerProcess) -> None:
    """Byte level: binary metadata frame, binary reply, TEXT traceback then close 1011."""
    uri = f"ws://127.0.0.1:{shared.port}"
    direct = {"proxy": None} if "proxy" in inspect.signature(websockets.sync.client.connect).parameters else {}
    with websockets.sync.client.connect(uri, compression=None, open_timeout=5, **direct) as ws:
        first = ws.recv(timeout=5)
        assert isinstance(first, bytes) and decode(first) == METADATA
        ws.send(encode({"id": 7}))
        reply = ws.recv(timeout=5)
        assert isinstance(reply, bytes) and decode(reply)["id"] == 7
        ws.send(encode({"fail": "raw"}))
        text = ws.recv(timeout=5)
        assert isinstance(text, str) and "Traceback" in text and "policy failure requested: raw" in text
        with pytest.raises(ConnectionClosedError) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
    with client_for(shared.port) as client:  # the server keeps serving new connections
        assert client.infer({"id": 8})["id"] == 8


def test_healthz(shared: ServerProcess) -> None:
    health = healthz("127.0.0.1", shared.port, timeout_s=2)
    assert health and health.status == 200 and health.body == "OK"
    down = healthz("127.0.0.1", free_port(), timeout_s=2)
    assert not down and down.status is None and "ConnectionRefused" in (down.error or "")
    assert "unreachable" in down.describe()


def test_server_error_becomes_exception_then_connection_reopens(shared: ServerProcess) -> None:
    with client_for(shared.port) as client:
        assert client.infer({"id": 1})["id"] == 1
        with pytest.raises(OpenpiServerError) as err:
            client.infer({"fail": "on purpose"})
        assert "RuntimeError: policy failure requested: on purpose" in err.value.server_traceback
        assert "Traceback (most recent call last)" in err.value.server_traceback
        assert not client.connected
        assert client.infer({"id": 2})["id"] == 2
        assert client.num_reconnects == 1


def test_unreachable_server_names_endpoint_and_attempts() -> None:
    port = free_port()
    start = time.monotonic()
    with pytest.raises(OpenpiConnectionError) as err:
        OpenpiClient("127.0.0.1", port, reconnect_deadline_s=0.5)
    message = str(err.value)
    assert f"127.0.0.1:{port}" in message and "attempt(s)" in message and "ConnectionRefusedError" in message
    assert time.monotonic() - start < 3


def test_api_key(servers: ServerFactory) -> None:
    server = servers.ours(api_key="s3cret")
    with client_for(server.port, api_key="s3cret") as client:
        assert client.infer({"id": 1})["id"] == 1
    for key in ("wrong", None):
        start = time.monotonic()
        with pytest.raises(OpenpiAuthError, match="HTTP 401"):
            client_for(server.port, api_key=key)
        assert time.monotonic() - start < 2  # refused keys are not retried
    assert healthz("127.0.0.1", server.port)  # health checks need no key


def test_oversized_messages_are_refused(shared: ServerProcess) -> None:
    with client_for(shared.port) as client:
        with pytest.raises(OpenpiMessageTooLargeError, match="1009"):
            client.infer({"blob": np.zeros(SERVER_LIMIT + 1, dtype=np.uint8)})
        assert client.infer({"id": 3})["id"] == 3  # the next request works
    with client_for(shared.port, max_message_bytes=10_000) as client:
        with pytest.raises(OpenpiMessageTooLargeError, match="max_message_bytes=10000"):
            client.infer({"blob": np.zeros(20_000, dtype=np.uint8)})  # ours, before sending
        with pytest.raises(OpenpiMessageTooLargeError, match="reply .* exceeds max_message_bytes"):
            client.infer({"reply_bytes": 20_000})  # small request, reply over our limit
        assert client.infer({"id": 4})["id"] == 4


def test_receive_timeout_drops_connection(shared: ServerProcess) -> None:
    with client_for(shared.port, timeout_s=0.3) as client:
        start = time.monotonic()
        with pytest.raises(OpenpiTimeoutError, match="timeout_s=0.3"):
            client.infer({"id": 1, "delay_s": 0.6})
        assert time.monotonic() - start < 0.55
        time.sleep(0.5)  # the server (concurrency 1) finishes the abandoned inference first
        assert client.infer({"id": 2})["id"] == 2  # no stale reply: the late one died with its connection


def _restart_later(servers: ServerFactory, port: int, delay_s: float, out: list[ServerProcess]) -> None:
    time.sleep(delay_s)
    out.append(servers.ours(port=port))


def test_server_killed_between_requests(servers: ServerFactory) -> None:
    first = servers.ours()
    port = first.port
    results = []
    with client_for(port, reconnect_deadline_s=15) as client:
        for i in range(5):
            results.append(client.infer({"id": i}))
        first.kill()
        restarted: list[ServerProcess] = []
        thread = threading.Thread(target=_restart_later, args=(servers, port, 0.3, restarted))
        thread.start()
        for i in range(5, 10):
            results.append(client.infer({"id": i}))
        thread.join()
    assert [r["id"] for r in results] == list(range(10))
    pids = [r["pid"] for r in results]
    assert len(set(pids[:5])) == 1 and len(set(pids[5:])) == 1 and pids[0] != pids[5]
    # Each server saw each of its requests exactly once: nothing lost, nothing duplicated.
    assert [r["count"] for r in results] == [1, 2, 3, 4, 5, 1, 2, 3, 4, 5]


def test_server_killed_during_a_request(servers: ServerFactory, tmp_path: pathlib.Path) -> None:
    first = servers.ours()
    port = first.port
    mark = tmp_path / "in-flight"
    with client_for(port, reconnect_deadline_s=15) as client:
        assert client.infer({"id": 0})["count"] == 1
        outcome: dict[str, Any] = {}

        def slow_request() -> None:
            try:
                outcome["result"] = client.infer({"id": 1, "delay_s": 0.5, "mark": str(mark)})
            except Exception as exc:  # pragma: no cover - reported below
                outcome["error"] = exc

        worker = threading.Thread(target=slow_request)
        worker.start()
        deadline = time.monotonic() + 10
        while not mark.exists():
            assert time.monotonic() < deadline, "the request never reached the server"
            time.sleep(0.01)
        first.kill()  # the reply for id 1 is never sent
        servers.ours(port=port)
        worker.join(20)
        assert "error" not in outcome, outcome.get("error")
        retried = outcome["result"]
        assert retried["id"] == 1 and retried["count"] == 1 and retried["pid"] != first.proc.pid
        follow = client.infer({"id": 2})
        assert follow["count"] == 2  # the retried request ran once on the new server


EXIT_SCRIPT = """
import sys, time
from arena_openpi import OpenpiClient, OpenpiPool
port = int(sys.argv[1])
client = OpenpiClient("127.0.0.1", port)            # left open on purpose
pool = OpenpiPool(f"127.0.0.1:{port}", connections_per_host=2)
pool.submit({"id": 1, "delay_s": 20})               # still in flight at exit
time.sleep(0.2)
print("exiting", flush=True)
"""


def test_interpreter_exit_does_not_hang(servers: ServerFactory) -> None:
    server = servers.ours()
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, str(server.port)], capture_output=True, timeout=15)
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"exiting" in proc.stdout
    assert time.monotonic() - start < 5  # not the 20 s of the in-flight inference
