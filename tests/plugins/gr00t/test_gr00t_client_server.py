"""Client <-> server over real sockets; every server runs in its own process on 127.0.0.1."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time

import msgpack
import numpy as np
import pytest
import zmq

from arena_gr00t import (
    Gr00tClient,
    Gr00tConnectionError,
    Gr00tServerError,
    Gr00tTimeoutError,
    ModalityConfig,
    nested_to_flat,
)
from arena_gr00t.wire.errors import Gr00tMessageTooLargeError

pytestmark = pytest.mark.timeout(20)

LANG = "annotation.human.task_description"
TOKEN = "s3cret-token"


def make_obs(b: int, first_id: int = 0) -> dict:
    """Nested observation whose rows carry their id in state[:, -1, 0]."""
    state = np.zeros((b, 1, 4), np.float32)
    state[:, -1, 0] = np.arange(first_id, first_id + b)
    return {
        "video": {"ego": np.full((b, 1, 8, 8, 3), 7, np.uint8)},
        "state": {"arm": state},
        "language": {LANG: [[f"task {first_id + i}"] for i in range(b)]},
    }


def row_ids(action: np.ndarray) -> list[int]:
    return [int(v) for v in action[:, 0, 0]]


@pytest.fixture(scope="module")
def server(spawn_server):
    return spawn_server("--max-message-bytes", str(2**20), tag="main")


@pytest.fixture
def client(server):
    with Gr00tClient([("127.0.0.1", server.port)], timeout_s=3.0, retries=1) as c:
        yield c


def raw_request(port: int, payload: bytes | list[bytes], timeout_ms: int = 3000) -> object:
    """Send bytes with a plain REQ socket, the way any upstream client would."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
    try:
        sock.connect(f"tcp://127.0.0.1:{port}")
        if isinstance(payload, list):
            sock.send_multipart(payload)
        else:
            sock.send(payload)
        return msgpack.unpackb(sock.recv(), raw=False, strict_map_key=True)
    finally:
        sock.close(linger=0)
        ctx.term()


# --------------------------------------------------------------------------- endpoints


def test_ping(client) -> None:
    assert client.ping() == {"status": "ok", "message": "Server is running"}


def test_get_modality_config(client) -> None:
    cfg = client.get_modality_config()
    assert set(cfg) == {"video", "state", "action", "language"}
    assert all(isinstance(v, ModalityConfig) for v in cfg.values())
    assert cfg["action"].horizon == 4
    assert cfg["action"].action_configs[0].rep == "RELATIVE"


def test_get_action_nested(client) -> None:
    action, info = client.get_action(make_obs(3), options=None)
    assert list(action) == ["arm"]
    assert action["arm"].shape == (3, 4, 3) and action["arm"].dtype == np.float32
    assert row_ids(action["arm"]) == [0, 1, 2]
    assert action["arm"].flags.writeable
    assert info == {"served_by": ["main"] * 3, "language": ["task 0", "task 1", "task 2"], "rows": 3}


def test_get_action_flat(client) -> None:
    action, info = client.get_action(nested_to_flat(make_obs(2)))
    assert list(action) == ["action.arm"]
    assert row_ids(action["action.arm"]) == [0, 1]
    assert info["language"] == ["task 0", "task 1"]


def test_reset_and_custom_call(client) -> None:
    info = client.reset({"episode": 3})
    assert info["tag"] == "main" and info["options"] == {"episode": 3}
    assert client.call("echo", {"x": 1, "arr": np.arange(3)})["echo"]["x"] == 1
    assert client.call("echo")["echo"] == {}


def test_missing_endpoint_means_get_action(server) -> None:
    # Built the way upstream's serializer does it: np.save into BytesIO per array.
    def default(obj):
        buf = io.BytesIO()
        np.save(buf, obj, allow_pickle=False)
        return {"__ndarray_class__": True, "as_npy": buf.getvalue()}

    payload = msgpack.packb({"data": {"observation": make_obs(1), "options": None}}, default=default, use_bin_type=True)
    reply = raw_request(server.port, payload)
    action, info = reply
    arm = np.load(io.BytesIO(action["arm"]["as_npy"]), allow_pickle=False)
    assert arm.shape == (1, 4, 3) and info["served_by"] == ["main"]


def test_handler_errors_and_bad_data_keep_server_serving(client) -> None:
    with pytest.raises(Gr00tServerError, match="boom") as err:
        client.get_action(make_obs(1), options={"raise": "boom"})
    assert "boom" in err.value.message
    with pytest.raises(Gr00tServerError, match="Unexpected key"):
        client.call("get_action", {"observation": make_obs(1), "bogus": 1})
    with pytest.raises(Gr00tServerError, match="Missing key"):
        client.call("get_action", {"options": None})
    with pytest.raises(Gr00tServerError, match="Unknown endpoint: nope"):
        client.call("nope")
    assert client.ping()["status"] == "ok"


def test_malformed_bytes_get_error_reply(server, client) -> None:
    for garbage in [b"\xc1\xc1not msgpack at all", b"\x92\x01", b"\x81\x01\x02", b""]:
        reply = raw_request(server.port, garbage)
        assert isinstance(reply, dict) and "error" in reply, garbage
    reply = raw_request(server.port, [b"\x80", b"\x80"])  # two frames
    assert "one frame" in reply["error"]
    assert client.ping()["status"] == "ok"


def test_slightly_oversized_message_gets_error_reply(client) -> None:
    big = make_obs(1)
    big["video"]["ego"] = np.zeros((1, 1, 595, 595, 3), np.uint8)  # ~1.01 MiB: over 1 MiB, within the slack
    with pytest.raises(Gr00tServerError, match="Request too large"):
        client.get_action(big)
    assert client.get_action(make_obs(1))[0]["arm"].shape == (1, 4, 3)


def test_far_oversized_message_is_cut_off_unread_and_the_server_serves_on(server, client) -> None:
    with pytest.raises(zmq.Again):  # libzmq drops that peer at MAXMSGSIZE: no reply, nothing buffered
        raw_request(server.port, b"\xc6" + (8 * 2**20).to_bytes(4, "big") + bytes(8 * 2**20), timeout_ms=1500)
    assert client.ping()["status"] == "ok"


def test_client_refuses_to_send_over_its_own_limit(server) -> None:
    big = make_obs(1)
    big["video"]["ego"] = np.zeros((1, 1, 700, 700, 3), np.uint8)
    with Gr00tClient([("127.0.0.1", server.port)], timeout_s=3.0, max_message_bytes=2**20) as c:
        with pytest.raises(Gr00tMessageTooLargeError, match="exceeds the limit of 1048576 bytes"):
            c.get_action(big)


def test_kill_refused_without_token_or_flag(server, client) -> None:
    with pytest.raises(Gr00tServerError, match="kill is disabled"):
        client.kill()
    assert server.proc.poll() is None
    assert client.ping()["status"] == "ok"


def test_slow_server_times_out_then_recovers(server) -> None:
    with Gr00tClient([("127.0.0.1", server.port)], timeout_s=0.3, retries=0) as c:
        transport = c._transports[0]
        c.ping()
        sock_before = transport._socket
        t0 = time.monotonic()
        with pytest.raises(Gr00tTimeoutError) as err:
            c.get_action(make_obs(1), options={"sleep_s": 1.0})
        assert time.monotonic() - t0 < 1.0
        text = str(err.value)
        assert f"127.0.0.1:{server.port}" in text and "'get_action'" in text and "1 attempt" in text
        assert transport._socket is None  # closed with linger 0; a fresh one is made on demand
        time.sleep(0.9)  # the server is single-threaded: let it finish the abandoned request
        assert c.ping()["status"] == "ok"
        assert transport._socket is not None and transport._socket is not sock_before


# --------------------------------------------------------------------------- auth and kill


def test_token_accepted_and_refused(spawn_server) -> None:
    srv = spawn_server("--token", TOKEN, tag="auth")
    addr = [("127.0.0.1", srv.port)]
    with Gr00tClient(addr, api_token=TOKEN, timeout_s=3.0) as good:
        assert good.ping()["status"] == "ok"
        assert good.get_action(make_obs(1))[1]["served_by"] == ["auth"]
    for token in [None, "wrong", TOKEN + "x"]:
        with Gr00tClient(addr, api_token=token, timeout_s=3.0) as bad:
            with pytest.raises(Gr00tServerError) as err:
                bad.ping()
            assert err.value.message == "Unauthorized: Invalid API token"
            with pytest.raises(Gr00tServerError, match="Unauthorized"):
                bad.kill()
    assert srv.proc.poll() is None
    with Gr00tClient(addr, api_token=TOKEN, timeout_s=3.0) as good:
        assert good.kill() is None
    assert srv.proc.wait(timeout=5) == 0


def test_kill_honoured_with_allow_kill(spawn_server) -> None:
    srv = spawn_server("--allow-kill", tag="killable")
    with Gr00tClient([("127.0.0.1", srv.port)], timeout_s=3.0) as c:
        c.kill()
    assert srv.proc.wait(timeout=5) == 0


# --------------------------------------------------------------------------- reconnect, dead port


def test_reconnects_to_restarted_server(spawn_server) -> None:
    first = spawn_server(tag="first")
    with Gr00tClient([("127.0.0.1", first.port)], timeout_s=1.0, retries=8, max_backoff_s=0.5) as c:
        assert c.get_action(make_obs(1))[1]["served_by"] == ["first"]
        first.kill()
        second = spawn_server("--port", str(first.port), tag="second")
        action, info = c.get_action(make_obs(2))
        assert info["served_by"] == ["second", "second"]
        assert row_ids(action["arm"]) == [0, 1]
        second.kill()
        # Now the request is sent while nothing listens; the server comes back meanwhile.
        started: list = []
        restarter = threading.Thread(
            target=lambda: (time.sleep(0.2), started.append(spawn_server("--port", str(first.port), tag="third")))
        )
        restarter.start()
        try:
            assert c.get_action(make_obs(1))[1]["served_by"] == ["third"]
        finally:
            restarter.join(timeout=15)
        assert started


def test_dead_port_raises_connection_error_within_deadline(free_port) -> None:
    with Gr00tClient([("127.0.0.1", free_port)], timeout_s=0.2, retries=50, deadline_s=1.0) as c:
        t0 = time.monotonic()
        with pytest.raises(Gr00tConnectionError) as err:
            c.get_action(make_obs(1))
        elapsed = time.monotonic() - t0
    assert elapsed < 2.0
    text = str(err.value)
    assert f"127.0.0.1:{free_port}" in text and "'get_action'" in text
    assert "attempts" in text and "connection refused" in text
    assert err.value.attempts >= 2 and err.value.port == free_port


# --------------------------------------------------------------------------- replicas


@pytest.fixture(scope="module")
def replicas(spawn_server):
    return [spawn_server(tag="A"), spawn_server(tag="B")]


@pytest.mark.parametrize("form", ["nested", "flat"])
def test_replicas_split_batch_in_order(replicas, form: str) -> None:
    hosts = ",".join(f"127.0.0.1:{r.port}" for r in replicas)
    obs = make_obs(5, first_id=10)
    if form == "flat":
        obs = nested_to_flat(obs)
    with Gr00tClient(hosts, timeout_s=3.0) as c:
        action, info = c.get_action(obs)
    key = "arm" if form == "nested" else "action.arm"
    assert row_ids(action[key]) == [10, 11, 12, 13, 14]
    assert info["served_by"] == ["A", "A", "A", "B", "B"]
    assert info["language"] == [f"task {i}" for i in range(10, 15)]
    assert info["rows"] == 3  # a shared (non-batched) info value comes from the first sub-batch


def test_replicas_run_concurrently_and_rotate_small_batches(replicas) -> None:
    hosts = [("127.0.0.1", r.port) for r in replicas]
    with Gr00tClient(hosts, timeout_s=3.0) as c:
        t0 = time.monotonic()
        _, info = c.get_action(make_obs(2), options={"sleep_s": 0.4})
        elapsed = time.monotonic() - t0
        assert info["served_by"] == ["A", "B"]
        assert elapsed < 0.75, f"sub-batches were not sent concurrently ({elapsed:.2f}s)"
        tags = [c.get_action(make_obs(1))[1]["served_by"][0] for _ in range(4)]
        assert tags == ["A", "B", "A", "B"]
        assert [r["tag"] for r in [c.reset()]] == ["A"]
        assert c.ping()["status"] == "ok"


def test_process_exits_promptly_with_unclosed_client_and_pending_request(free_port) -> None:
    """Linger 0 everywhere: an abandoned request to a dead server never blocks interpreter exit."""
    script = (
        "import numpy as np\n"
        "from arena_gr00t import Gr00tClient, Gr00tConnectionError\n"
        f"c = Gr00tClient([('127.0.0.1', {free_port})], timeout_s=0.2, retries=0)\n"
        "try:\n"
        "    c.get_action({'state': {'arm': np.zeros((1, 1, 4), np.float32)}})\n"
        "except Gr00tConnectionError:\n"
        "    pass\n"
        f"c2 = Gr00tClient([('127.0.0.1', {free_port})], timeout_s=0.2)\n"
        "c2._transports[0]._ensure_socket().send(b'queued, never delivered')\n"
        "print('done', flush=True)\n"
    )
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=15)
    assert out.returncode == 0, out.stderr
    assert "done" in out.stdout
    assert time.monotonic() - t0 < 10
