"""Against the real peer: openpi's own WebsocketPolicyServer (PyPI ``openpi-server`` 0.1.0,
a byte-identical copy of upstream's server module) in a separate process, and openpi's own
client against our server. Install lines: plugins/openpi/README.md.
"""

from __future__ import annotations

import importlib.util
import inspect
import threading
import time

import numpy as np
import pytest
import websockets.sync.client
from openpi_test_servers import ServerFactory, ServerProcess

from arena_openpi import OpenpiClient, OpenpiConnectionError, OpenpiServerError, healthz

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.skipif(
        importlib.util.find_spec("openpi_server") is None,
        reason="openpi-server is not installed (pip install --no-deps openpi-server==0.1.0 openpi-client; "
        "see plugins/openpi/README.md)",
    ),
]

METADATA = {"reset_pose": [0.0, 0.5, 1.0], "name": "stock"}


@pytest.fixture(scope="module")
def stock(module_servers: ServerFactory) -> ServerProcess:
    return module_servers.stock(metadata=METADATA)


def libero_obs(i: int) -> dict:
    rng = np.random.default_rng(i)
    return {
        "observation/image": rng.integers(0, 255, (224, 224, 3), dtype=np.uint8),
        "observation/wrist_image": rng.integers(0, 255, (224, 224, 3), dtype=np.uint8),
        "observation/state": np.full(8, i, dtype=np.float32),
        "prompt": "pick up the black bowl",
        "id": i,
    }


def test_stock_server_metadata_inference_and_error(stock: ServerProcess) -> None:
    assert healthz("127.0.0.1", stock.port)
    with OpenpiClient("127.0.0.1", stock.port, reconnect_deadline_s=5) as client:
        assert client.metadata == METADATA
        first_count = None
        for i in range(4):
            obs = libero_obs(i)
            result = client.infer(obs)
            assert result["id"] == i
            assert result["image_sum"] == int(obs["observation/image"].astype(np.int64).sum())
            np.testing.assert_array_equal(result["actions"][0], np.full(7, i, dtype=np.float32))
            assert result["actions"].shape == (10, 7) and not result["actions"].flags.writeable
            assert ("prev_total_ms" in result["server_timing"]) == (i > 0)
            first_count = first_count or result["count"]
            assert result["count"] == first_count + i  # one policy call per request
        with pytest.raises(OpenpiServerError) as err:
            client.infer({"fail": "stock error path"})
        assert "RuntimeError: policy failure requested: stock error path" in err.value.server_traceback
        after = client.infer({"id": 99})  # on a reopened connection
        assert after["id"] == 99 and client.num_reconnects == 1
        assert after["count"] == first_count + 5  # the failed call counted once, nothing re-sent


def test_slow_inference_on_stock_server_keeps_connection(stock: ServerProcess) -> None:
    """The stock server blocks its event loop during inference and cannot answer pings; with
    short pings and no ping timeout (our default policy) a long inference still succeeds."""
    with OpenpiClient("127.0.0.1", stock.port, ping_interval_s=0.1, ping_timeout_s=None, max_attempts=1) as client:
        assert client.infer({"id": 1, "delay_s": 0.6})["id"] == 1
    # The failure mode the default avoids: a ping timeout shorter than the inference. (The sync
    # client of websockets < 15 sends no pings at all, so it cannot hit this.)
    if "ping_timeout" not in inspect.signature(websockets.sync.client.connect).parameters:
        return
    with OpenpiClient("127.0.0.1", stock.port, ping_interval_s=0.1, ping_timeout_s=0.2, max_attempts=1) as client:
        with pytest.raises(OpenpiConnectionError):
            client.infer({"id": 2, "delay_s": 0.6})
    time.sleep(0.6)  # let the stock server finish the abandoned inference


def test_stock_server_serves_connections_one_after_another(stock: ServerProcess) -> None:
    """Documented upstream behaviour that motivates the replica pool."""
    clients = [OpenpiClient("127.0.0.1", stock.port) for _ in range(3)]
    try:
        start = time.monotonic()
        threads = [threading.Thread(target=c.infer, args=({"id": i, "delay_s": 0.2},)) for i, c in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert time.monotonic() - start >= 0.55  # 3 x 0.2 s, serialised
    finally:
        for c in clients:
            c.close()


@pytest.mark.filterwarnings("ignore:connect\\(\\) must be used as a context manager:DeprecationWarning")
def test_stock_client_against_our_server(servers: ServerFactory) -> None:
    """openpi's own WebsocketClientPolicy talks to our OpenpiServer."""
    pytest.importorskip("typing_extensions", reason="openpi_client.websocket_client_policy needs typing_extensions")
    from openpi_client.websocket_client_policy import WebsocketClientPolicy

    ours = servers.ours(metadata=METADATA, api_key="k3y")  # also checks the stock auth header format
    stock_client = WebsocketClientPolicy(host="127.0.0.1", port=ours.port, api_key="k3y")
    try:
        assert stock_client.get_server_metadata() == METADATA
        obs = libero_obs(5)
        result = stock_client.infer(obs)
        assert result["id"] == 5 and result["actions"].shape == (10, 7)
        assert result["image_sum"] == int(obs["observation/image"].astype(np.int64).sum())
        with pytest.raises(RuntimeError, match="policy failure requested"):
            stock_client.infer({"fail": "for the stock client"})  # it raises RuntimeError(text)
    finally:
        stock_client._ws.close()


def test_evaluate_through_the_stock_server(servers: ServerFactory, tmp_path) -> None:
    """A full arena.evaluate through openpi's own WebsocketPolicyServer serving a policy object
    this test supplies: no layout in its metadata, so the chunk length comes from the probe."""
    import json

    import arena

    stock = servers.stock(policy="goal", policy_args={"horizon": 4})
    run = tmp_path / "run"
    summary = arena.evaluate(
        "openpi",
        "debug/suite",
        episodes=5,
        num_envs=3,
        output=run,
        policy_config={"host": f"127.0.0.1:{stock.port}", "connections_per_host": 2},
    )
    assert summary.overall.episodes == 10 and summary.overall.successes == 10
    assert summary.config["action_horizon"] == 4 and summary.config["scheduler_config"]["execution_horizon"] == 4
    lines = [json.loads(line) for line in (run / "episodes.jsonl").read_text().splitlines()]
    assert sorted((r["task"], r["episode_index"]) for r in lines) == [
        (t, i) for t in ("reach", "reach-far") for i in range(5)
    ]
