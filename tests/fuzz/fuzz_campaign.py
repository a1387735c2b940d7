"""A bounded fuzz campaign against the reference servers on 127.0.0.1 (shared by tests/fuzz and bench/).

Each message is one of: random bytes, a valid request truncated or with bytes flipped, valid
msgpack of the wrong shape, arrays with absurd dtypes or shapes, empty-container floods,
oversized frames, and raw TCP garbage on the port. After every message a valid request must be
answered correctly (else the message counts as a hang or a lost reply); the server process must
stay alive; its RSS is read before and after.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import msgpack
import numpy as np

LOOPBACK = "127.0.0.1"


@attrs.define
class Report:
    server: str
    sent: int = 0
    error_replies: int = 0
    dropped: int = 0  # no reply and the connection closed (oversized, malformed WebSocket frames)
    hangs: int = 0  # the valid request after a message got no answer in time
    lost: int = 0  # a valid request answered wrongly
    crashes: int = 0
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0

    def line(self) -> str:
        return (
            f"{self.server}: sent={self.sent} crashes={self.crashes} hangs={self.hangs} lost={self.lost} "
            f"error_replies={self.error_replies} dropped={self.dropped} rss_before_mb={self.rss_before_mb:.1f} "
            f"rss_after_mb={self.rss_after_mb:.1f} rss_growth_mb={self.rss_after_mb - self.rss_before_mb:.1f}"
        )


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def start(cmd: list[str], ready: Callable[[], bool], timeout_s: float = 60.0) -> subprocess.Popen:
    quiet = None if os.environ.get("FUZZ_DEBUG") else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdout=quiet, stderr=quiet, env=dict(os.environ))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[:4]} exited with {proc.returncode} at start")
        if ready():
            return proc
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{cmd[:4]} did not start")


def _bin_script(name: str) -> list[str]:
    exe = Path(sys.executable).with_name(name)
    return [str(exe)] if exe.exists() else [sys.executable, "-m", name.replace("-", "_") + ".cli"]


# -- message generators -------------------------------------------------------------------------------


def absurd_arrays(rng: random.Random, tag: str) -> Any:
    """An array marker map with an absurd dtype, shape or payload (GR00T npy or openpi msgpack-numpy)."""
    dtypes = ["|S0", "<U0", "|V0", "|O", "<f4", "<U99999999999", "S-1", "bogus", "(3,)i4", "|b1", ">c16", "M8[s]"]
    shape = rng.choice([[10**9], [0], [-1], [2**62, 2**62], [], [3, "x"], list(range(40)), [1] * 70])
    data = rng.randbytes(rng.choice([0, 1, 7, 64, 4096]))
    if tag == "gr00t":
        header = f"{{'descr': {rng.choice(dtypes)!r}, 'fortran_order': {rng.choice(['False', 'True', '1'])}, 'shape': {tuple(shape)!r}, }}"
        body = header.ljust(rng.choice([50, 118, 2000])) + "\n"
        npy = rng.choice([b"\x93NUMPY\x01\x00", b"\x93NUMPY\x02\x00", b"\x93NUMPY\x09\x00", b"PK\x03\x04"])
        npy += len(body).to_bytes(4 if npy[6:7] == b"\x02" else 2, "little") + body.encode() + data
        return {"__ndarray_class__": True, "as_npy": npy}
    return {b"__ndarray__": True, b"data": data, b"dtype": rng.choice(dtypes), b"shape": shape}


def hostile(rng: random.Random, valid: bytes, tag: str, limit: int) -> bytes:
    kind = rng.randrange(9)
    if kind == 0:
        return rng.randbytes(rng.randint(0, 512))
    if kind == 1:
        return valid[: rng.randint(0, len(valid))]
    if kind == 2:
        buf = bytearray(valid)
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        return bytes(buf)
    if kind == 3:
        return msgpack.packb(rng.choice([[1, 2], "text", 3.5, None, {"endpoint": 7}, {"data": []}, {1: 2}]))
    if kind == 4:
        arr = absurd_arrays(rng, tag)
        body = (
            {"endpoint": "get_action", "data": {"observation": {"state": {"x": arr}}}} if tag == "gr00t" else {"x": arr}
        )
        return msgpack.packb(body, use_bin_type=True)
    if kind == 5:
        return msgpack.packb([[] for _ in range(rng.choice([10_001, 100_000, 1_000_000]))])
    if kind == 6:
        return b"\x91" * rng.choice([33, 1000, 100_000]) + b"\xc0"
    if kind == 7:
        return b"\xc6" + (limit + rng.choice([1, 2**20])).to_bytes(4, "big") + bytes(min(limit + 2**20, 48 * 2**20))
    return msgpack.packb(
        {
            "endpoint": "get_action",
            "data": {
                "observation": {"video": {"k": {"__ndarray_class__": True, "as_npy": b"PK\x03\x04" + bytes(200)}}}
            },
        }
    )


# -- GR00T ---------------------------------------------------------------------------------------------


def gr00t_campaign(messages: int, seed: int = 0, limit: int = 2**20) -> Report:
    import zmq

    from arena_gr00t.wire.codec import encode

    port = free_port()
    cmd = [*_bin_script("arena-gr00t"), "serve", "--policy", "zero", "--env", "debug/reach", "--port", str(port),
           "--max-message-bytes", str(limit), "--log-level", "ERROR"]  # fmt: skip
    ctx = zmq.Context()
    ctx.setsockopt(zmq.LINGER, 0)

    def ping(timeout_ms: int = 3000) -> Any:
        sock = ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
        sock.setsockopt(zmq.SNDTIMEO, timeout_ms)
        try:
            sock.connect(f"tcp://{LOOPBACK}:{port}")
            sock.send(encode({"endpoint": "ping"}))
            return msgpack.unpackb(sock.recv(), raw=False)
        except zmq.Again:
            return None
        finally:
            sock.close(linger=0)

    proc = start(cmd, lambda: ping(200) is not None)
    report = Report("gr00t")
    rng = random.Random(seed)
    valid = encode(
        {"endpoint": "get_action", "data": {"observation": {"state": {"position": np.zeros((1, 1, 2), np.float32)}}}}
    )
    try:
        time.sleep(0.2)
        report.rss_before_mb = rss_mb(proc.pid)
        sock = ctx.socket(zmq.REQ)
        for i in range(messages):
            report.sent += 1
            if rng.random() < 0.1:
                _tcp_garbage(port, rng)
            else:
                sock.close(linger=0)
                sock = ctx.socket(zmq.REQ)
                sock.setsockopt(zmq.LINGER, 0)
                sock.setsockopt(zmq.RCVTIMEO, 500)  # a refusal comes in ms; a cut-off message gets none
                sock.setsockopt(zmq.SNDTIMEO, 2000)
                sock.connect(f"tcp://{LOOPBACK}:{port}")
                message = hostile(rng, valid, "gr00t", limit)
                if os.environ.get("FUZZ_DEBUG"):
                    print(i, len(message), message[:40], flush=True)
                sock.send(message)
                try:
                    reply = msgpack.unpackb(sock.recv(), raw=False)
                    report.error_replies += isinstance(reply, dict) and "error" in reply
                except zmq.Again:
                    report.dropped += 1
                except Exception:  # noqa: BLE001 - a reply that is not msgpack is a wrong answer
                    report.lost += 1
            if proc.poll() is not None:
                report.crashes += 1
                break
            if i % 10 == 0 or i == messages - 1:
                got = ping()
                if got is None:
                    report.hangs += 1
                elif got.get("status") != "ok":
                    report.lost += 1
        report.rss_after_mb = rss_mb(proc.pid) if proc.poll() is None else 0.0
    finally:
        sock.close(linger=0)
        proc.kill()
        proc.wait(10)
        ctx.destroy(linger=0)
    return report


def _tcp_garbage(port: int, rng: random.Random) -> None:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1) as s:
            s.sendall(rng.randbytes(rng.randint(1, 2000)))
    except OSError:
        pass


# -- openpi --------------------------------------------------------------------------------------------


def openpi_campaign(messages: int, seed: int = 0, limit: int = 2**20) -> Report:
    import websockets.sync.client as wsc

    from arena_openpi import healthz
    from arena_openpi.wire.codec import decode, encode

    port = free_port()
    cmd = [*_bin_script("arena-openpi"), "serve", "--policy", "zero", "--env", "debug/reach", "--port", str(port),
           "--max-message-bytes", str(limit), "--log-level", "ERROR"]  # fmt: skip
    proc = start(cmd, lambda: healthz(LOOPBACK, port, timeout_s=0.5))
    report = Report("openpi")
    rng = random.Random(seed)
    obs = {"observation/state": np.zeros(4, np.float32), "prompt": "move the point to the green goal"}

    def valid_request(timeout_s: float = 5.0) -> Any:
        try:
            with wsc.connect(f"ws://{LOOPBACK}:{port}", open_timeout=timeout_s, compression=None, max_size=None) as ws:
                ws.recv(timeout=timeout_s)
                ws.send(encode(layout_obs))
                return decode(ws.recv(timeout=timeout_s))
        except TimeoutError:
            return None
        except Exception as exc:  # noqa: BLE001
            return exc

    with wsc.connect(f"ws://{LOOPBACK}:{port}", compression=None, max_size=None) as ws:
        metadata = decode(ws.recv(timeout=5))
    layout_obs = _openpi_obs(metadata) or obs
    valid = encode(layout_obs)
    try:
        report.rss_before_mb = rss_mb(proc.pid)
        for i in range(messages):
            report.sent += 1
            if rng.random() < 0.1:
                _tcp_garbage(port, rng)
            else:
                try:
                    with wsc.connect(f"ws://{LOOPBACK}:{port}", open_timeout=5, compression=None, max_size=None) as ws:
                        ws.recv(timeout=5)
                        message = hostile(rng, valid, "openpi", limit)
                        ws.send(message if rng.random() < 0.9 else message.decode("latin1"))
                        reply = ws.recv(timeout=5)
                        report.error_replies += isinstance(reply, str)
                except TimeoutError:
                    report.hangs += 1
                except Exception:  # noqa: BLE001 - closed connections are the server's answer to junk
                    report.dropped += 1
            if proc.poll() is not None:
                report.crashes += 1
                break
            if i % 10 == 0 or i == messages - 1:
                got = valid_request()
                if got is None:
                    report.hangs += 1
                elif not isinstance(got, dict) or "actions" not in got:
                    report.lost += 1
        report.rss_after_mb = rss_mb(proc.pid) if proc.poll() is None else 0.0
    finally:
        proc.kill()
        proc.wait(10)
    return report


def _openpi_obs(metadata: Any) -> dict[str, Any] | None:
    """A valid observation for the served layout (arena-openpi serve states it in the metadata)."""
    from arena_openpi.layout import ServedLayout

    layout = ServedLayout.from_metadata(metadata) if isinstance(metadata, dict) else None
    if layout is None:
        return None
    out: dict[str, Any] = {}
    for key, entry in layout.entries.items():
        if entry.kind == "prompt":
            out[key] = "move the point to the green goal"
        else:
            out[key] = np.zeros(entry.shape, np.uint8 if entry.kind == "image" else np.float32)
    return out


def campaigns(messages: int, seed: int = 0) -> Iterator[Report]:
    yield gr00t_campaign(messages, seed)
    yield openpi_campaign(messages, seed)
