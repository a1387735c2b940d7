"""End to end on 127.0.0.1: `arena eval --policy openvla` against `arena-openvla serve`, Meta-World's expert,
the stock server's quirks (the "error" body, the double-encoded form), tokens and size limits."""

from __future__ import annotations

import json

import json_numpy
import numpy as np
import pytest
import urllib3
from arena_openvla.wire.errors import OpenvlaServerError
from arena_openvla.wire.http import ActConnection
from openvla_helpers import serve

import arena
from arena.cli import main as arena_main
from arena.errors import ArenaError
from arena.remote.errors import RemoteAuthError

pytest.importorskip("arena_metaworld")
pytestmark = pytest.mark.timeout(180)

ENV = "metaworld/reach-v3"


@pytest.fixture(scope="module")
def server():
    s = serve("--policy", "expert", "--env", ENV)
    yield s
    s.kill()


def post(
    url: str, content: bytes | str | None = None, json: object = None, timeout: float = 10
) -> urllib3.BaseHTTPResponse:
    """A plain client's POST (what OpenVLA's own clients send)."""
    return urllib3.request("POST", url, body=content, json=json, timeout=timeout, retries=False)


def outcomes(records: list) -> list:
    return sorted((r.task, r.episode_index, r.seed, r.success, r.length) for r in records)


def run(policy: str, **kw) -> list:
    records: list = []
    arena.evaluate(policy, ENV, episodes=4, write=False, on_episode=lambda r, d, t: records.append(r), **kw)
    return records


def test_served_expert_reaches_the_in_process_success_with_exact_counts(server, tmp_path) -> None:
    local = run("expert")
    out = tmp_path / "run"
    argv = ["eval", "--policy", "openvla", "--env", ENV, "--host", f"127.0.0.1:{server.port}", "--episodes", "4"]
    assert arena_main([*argv, "--output", str(out), "--no-progress"]) == 0
    lines = [json.loads(x) for x in (out / "episodes.jsonl").read_text().splitlines()]
    got = sorted((d["task"], d["episode_index"], d["seed"], d["success"], d["length"]) for d in lines)
    assert got == outcomes(local)
    assert sum(d["success"] for d in lines) == sum(r.success for r in local) > 0


def test_replicas_and_double_encoded_bodies_give_the_same_episodes(server) -> None:
    second = serve("--policy", "expert", "--env", ENV)
    try:
        hosts = f"127.0.0.1:{server.port},127.0.0.1:{second.port}"
        got = run("openvla", num_envs=2, policy_config={"host": hosts, "double_encode": True})
    finally:
        second.kill()
    assert outcomes(got) == outcomes(run("expert"))


def test_the_error_body_is_a_server_error_naming_the_server(server) -> None:
    conn = ActConnection("127.0.0.1", server.port, timeout_s=10)
    try:
        with pytest.raises(OpenvlaServerError, match=r'127\.0\.0\.1:\d+ failed: answered "error"'):
            conn.act(
                {"image": np.zeros((8, 8, 3), np.uint8), "instruction": "reach"}
            )  # no proprio: the expert needs it
    finally:
        conn.close()


def test_a_stock_style_client_body_is_accepted(server) -> None:
    """What OpenVLA's own clients send: json-numpy, or {"encoded": ...} without json-numpy on their side."""
    proprio = np.zeros(39, np.float32)
    from arena_metaworld.tasks import instructions

    body = {"image": np.zeros((224, 224, 3), np.uint8), "instruction": instructions()["reach-v3"], "proprio": proprio}
    r = post(f"http://127.0.0.1:{server.port}/act", content=json_numpy.dumps(body))
    assert r.status == 200 and json_numpy.loads(r.data.decode()).shape == (4,)
    r = post(f"http://127.0.0.1:{server.port}/act", json={"encoded": json_numpy.dumps(body)})
    assert isinstance(r.json(), str) and json_numpy.loads(r.json()).shape == (4,)


def test_hostile_bodies_get_the_error_reply_and_the_server_keeps_serving(server) -> None:
    url = f"http://127.0.0.1:{server.port}/act"
    deep = "[" * 10_000 + "]" * 10_000
    obj_dtype = json.dumps({"image": {"__numpy__": "AAAA", "dtype": "|O", "shape": [1]}})
    for content in (b"\xff\xfe", b"not json", deep.encode(), obj_dtype.encode(), b'{"encoded": 5}'):
        r = post(url, content=content)
        assert r.status == 200 and r.json() == "error"
    r = post(url, content=b"x" * (17 << 20), timeout=30)
    assert r.status == 413
    test_a_stock_style_client_body_is_accepted(server)


def test_a_token_is_checked_before_the_body_is_read() -> None:
    secured = serve("--policy", "expert", "--env", ENV, env={"OPENVLA_TOKEN": "s3cret"})
    try:
        r = post(f"http://127.0.0.1:{secured.port}/act", content=b"x" * 1000)
        assert r.status == 401
        conn = ActConnection("127.0.0.1", secured.port, timeout_s=10)
        with pytest.raises(RemoteAuthError, match="refused the token"):
            conn.act({"instruction": "x"})
        conn.close()
        ok = run("openvla", policy_config={"port": secured.port, "token": "s3cret"})
        assert outcomes(ok) == outcomes(run("expert"))
    finally:
        secured.kill()


def test_preflight_names_an_unreachable_server() -> None:
    with pytest.raises(ArenaError, match=r"openvla server at 127\.0\.0\.1:1 is not reachable .*start one"):
        run("openvla", policy_config={"port": 1})
