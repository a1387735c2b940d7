"""The ray backend on a real two-node-plus-head Ray cluster on this machine (ray.cluster_utils.Cluster).

Both worker nodes advertise a custom ``sim`` resource, the head has none:
shards asking for ``{"sim": 1}`` land on the sim nodes only, and removing
the node under a running shard ends with the exact episode set.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import arena
from arena.backends import BackendConfig

pytestmark = pytest.mark.timeout(240)

SIM = {"sim": 1, "CPU": 0}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    from arena.backends.ray_runtime import import_ray

    ray = import_ray(local=True)
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    nodes = [c.add_node(num_cpus=1, resources={"sim": 1}) for _ in range(2)]
    ray.init(address=c.address, configure_logging=False)
    c.wait_for_nodes()
    try:
        yield c, nodes
    finally:
        ray.shutdown()
        c.shutdown()


def _run(**kw: Any) -> tuple[arena.Summary, list]:
    records: list = []
    on = kw.pop("on_episode", None)

    def collect(record: Any, done: int, total: int) -> None:
        records.append(record)
        if on is not None:
            on(record)

    summary = arena.evaluate(
        "random", "debug/suite", episodes=3, seed=11, write=False, on_episode=collect,
        env_config={"step_cost_ms": 2.0}, **kw,
    )  # fmt: skip
    return summary, records


def _outcomes(records: list) -> list:
    return sorted((r.task, r.episode_index, r.seed, r.success, r.length) for r in records)


def test_shards_are_placed_on_sim_nodes_and_survive_a_node_removal(cluster: Any) -> None:
    c, nodes = cluster
    _, reference = _run(num_envs=2)
    sim_nodes = {n.node_id[:12]: n for n in nodes}
    removed: list[Any] = []

    def remove_first_shards_node(record: Any) -> None:
        node = record.shard.split(" node ")[1].split()[0]
        assert node in sim_nodes, (record.shard, list(sim_nodes))
        if not removed:
            removed.append(sim_nodes[node])
            c.remove_node(sim_nodes[node])

    summary, records = _run(backend=BackendConfig("ray", workers=1, resources=SIM), on_episode=remove_first_shards_node)
    assert _outcomes(records) == _outcomes(reference)
    assert summary.totals["shards_replaced"] >= 1 and summary.totals["episodes_lost"] >= 1
    survivor = next(n for n in nodes if n is not removed[0]).node_id[:12]
    assert f"node {survivor}" in records[-1].shard  # the replacement runs on the other sim node
