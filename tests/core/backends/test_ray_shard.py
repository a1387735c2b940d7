"""A shard's link without Ray: the token, env exceptions as env failures, anything else as a shard failure."""

from __future__ import annotations

import numpy as np
import pytest
import zmq

from arena.backends.ray_codec import pack_call, unpack_reply
from arena.backends.ray_link import ShardLink
from arena.backends.ray_shard import EnvShard
from arena.env import EpisodeSpec

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def shard(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LP_NUM_THREADS", "1")  # what a shard sets for itself; restored for the other tests
    s = EnvShard()
    info = s.start("debug/reach", None, 2, 1.0, b"k" * 32)
    ctx = zmq.Context()
    link = ShardLink(ctx, info["endpoint"], b"k" * 32, 1 << 20)
    yield s, link, info
    link.close()
    ctx.term()
    s.stop()


def _reply(link: ShardLink, seq: int) -> tuple[bytes, bytes]:
    for _ in range(200):
        if link.has(seq):
            return link.take(seq)
        link.sock.poll(25)
    raise AssertionError("no reply")


def test_calls_run_on_the_link_and_env_exceptions_are_env_failures(shard) -> None:
    s, link, info = shard
    assert info["endpoint"].startswith("tcp://127.0.0.1:")
    eps = [EpisodeSpec("reach", 0, 1), EpisodeSpec("reach", 1, 2)]
    status, payload = _reply(link, link.send(pack_call("reset", [0, 1], np.zeros(2, bool), episodes=eps)))
    dims = {g: len(e) for g, e in info["spec"].state_groups.items()}
    reply = unpack_reply(payload, dims, info["spec"].cameras)
    assert status == b"ok" and reply.error == [None, None] and reply.instructions[0]

    def boom(*a, **k):
        raise RuntimeError("adapter bug")

    s.env.step_chunk = boom
    acts = np.zeros((2, 1, 2), np.float32)
    status, payload = _reply(link, link.send(pack_call("step", [0, 1], np.zeros(2, bool), acts, np.ones(2))))
    assert (status, payload) == (b"raised", b"RuntimeError: adapter bug")


def test_an_undecodable_call_is_a_shard_failure_and_a_wrong_token_is_dropped(shard) -> None:
    _, link, _ = shard
    status, payload = _reply(link, link.send(b"\xc1 not msgpack"))
    assert status == b"fail"
    link.sock.send_multipart([b"x" * 32, (99).to_bytes(8, "little"), b""])
    assert not link.sock.poll(300)


def test_resource_requests_become_ray_actor_options_with_retries_off() -> None:
    from arena.backends import parse_resources
    from arena.backends.ray_env import actor_options

    opts = actor_options(parse_resources('{"GPU": 0.5, "sim": 1}'))
    assert (opts["num_cpus"], opts["num_gpus"], opts["resources"]) == (1.0, 0.5, {"sim": 1.0})
    assert opts["max_restarts"] == 0 and opts["max_task_retries"] == 0
    assert actor_options(parse_resources('{"CPU": 0, "sim": 2}'))["num_cpus"] == 0.0


def test_building_a_shard_leaves_the_process_environment_as_it_was(shard) -> None:
    import os

    from arena.vector import IN_PROCESS_VAR

    assert IN_PROCESS_VAR not in os.environ  # set only while the family built the shard's env
