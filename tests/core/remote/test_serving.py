"""The served-handler base: which cameras a server asks for, request checks, action groups."""

from __future__ import annotations

import numpy as np
import pytest

from arena.errors import ContractError
from arena.remote.serving import ServedHandler, ServedPolicy, checked_array


@pytest.fixture(scope="module")
def served():
    s = ServedPolicy("expert", "debug/reach", max_batch=4)
    yield s
    s.close()


def test_checked_array_names_the_key_the_expected_and_the_received() -> None:
    img = np.zeros((2, 1, 4, 4, 3), np.uint8)
    assert checked_array("video['cam']", img, "image", ("B", 1, 4, 4, 3)) is img
    with pytest.raises(ContractError, match=r"video\['cam'\]: expected uint8 \(B, 1, 4, 4, 3\), received float32"):
        checked_array("video['cam']", img.astype(np.float32), "image", ("B", 1, 4, 4, 3))
    with pytest.raises(ContractError, match=r"state: expected float32 \(3,\), received int64 \(4,\)"):
        checked_array("state", np.zeros(4, np.int64), "state", (3,))
    with pytest.raises(ContractError, match=r"state: expected float32 \(3,\), received list"):
        checked_array("state", [0.0, 0.0, 0.0], "state", (3,))


def test_a_handler_asks_for_the_cameras_its_policy_reads_or_every_env_camera(served) -> None:
    assert ServedHandler(served).cameras == [c for c in served.description.cameras if c in served.spec.cameras]
    assert ServedHandler(served, "env").cameras == list(served.spec.cameras)
    with pytest.raises(ValueError, match="image_keys must be one of"):
        ServedHandler(served, "all")


def test_action_groups_split_a_chunk_by_the_envs_groups(served) -> None:
    spec = served.spec
    chunk = np.arange(2 * 3 * spec.action_dim, dtype=np.float64).reshape(2, 3, spec.action_dim)
    groups = ServedHandler(served).action_groups(chunk, "action.")
    assert list(groups) == [f"action.{g.name}" for g in spec.action_groups]
    joined = np.concatenate([groups[f"action.{g.name}"] for g in spec.action_groups], axis=2)
    assert joined.dtype == np.float32 and np.array_equal(joined, chunk.astype(np.float32))
