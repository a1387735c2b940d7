"""Observation form conversion, batch slicing/concatenation, host spec parsing."""

from __future__ import annotations

import numpy as np
import pytest

from arena_gr00t import (
    action_to_flat,
    action_to_nested,
    batch_size,
    concat_batches,
    flat_to_nested,
    is_flat,
    nested_to_flat,
    parse_host,
    parse_hosts,
    slice_batch,
    split_ranges,
)

pytestmark = pytest.mark.timeout(10)

LANG = "annotation.human.task_description"


def nested_obs(b: int = 3) -> dict:
    return {
        "video": {"ego": np.arange(b * 2 * 2 * 3, dtype=np.uint8).reshape(b, 1, 2, 2, 3)},
        "state": {"arm": np.arange(b * 4, dtype=np.float32).reshape(b, 1, 4)},
        "language": {LANG: [[f"task {i}"] for i in range(b)]},
    }


def test_nested_flat_round_trip() -> None:
    nested = nested_obs()
    flat = nested_to_flat(nested)
    assert list(flat) == ["video.ego", "state.arm", LANG]
    assert flat[LANG] == ["task 0", "task 1", "task 2"]
    assert is_flat(flat) and not is_flat(nested)
    back = flat_to_nested(flat)
    assert back["language"] == nested["language"]
    np.testing.assert_array_equal(back["video"]["ego"], nested["video"]["ego"])
    np.testing.assert_array_equal(back["state"]["arm"], nested["state"]["arm"])


def test_form_conversion_errors() -> None:
    with pytest.raises(ValueError, match="exactly one string"):
        nested_to_flat({"language": {LANG: [["a", "b"]]}})
    with pytest.raises(ValueError, match="unexpected top-level"):
        nested_to_flat({"video": {}, "extra": 1})
    with pytest.raises(ValueError, match="neither"):
        flat_to_nested({"mystery": np.zeros(3)})


def test_action_key_forms() -> None:
    a = {"arm": np.zeros((1, 4, 3))}
    assert list(action_to_flat(a)) == ["action.arm"]
    assert list(action_to_nested(action_to_flat(a))) == ["arm"]


@pytest.mark.parametrize("form", ["nested", "flat"])
def test_slice_and_concat_batches(form: str) -> None:
    obs = nested_obs(5)
    if form == "flat":
        obs = nested_to_flat(obs)
    assert batch_size(obs) == 5
    ranges = split_ranges(5, 2)
    assert ranges == [(0, 3), (3, 5)]
    parts = [slice_batch(obs, a, b) for a, b in ranges]
    assert [batch_size(p) for p in parts] == [3, 2]
    whole = concat_batches(parts, [3, 2])
    key = "state.arm" if form == "flat" else "state"
    if form == "flat":
        np.testing.assert_array_equal(whole[key], obs[key])
        assert whole[LANG] == obs[LANG]
    else:
        np.testing.assert_array_equal(whole["state"]["arm"], obs["state"]["arm"])
        assert whole["language"] == obs["language"]


def test_split_ranges_edge_cases() -> None:
    assert split_ranges(2, 4) == [(0, 1), (1, 2)]
    assert split_ranges(7, 3) == [(0, 3), (3, 5), (5, 7)]
    assert split_ranges(1, 1) == [(0, 1)]


def test_batch_size_errors() -> None:
    with pytest.raises(ValueError, match="inconsistent"):
        batch_size({"a": np.zeros((2, 3)), "b": [1, 2, 3]})
    with pytest.raises(ValueError, match="no array"):
        batch_size({"a": "x"})


def test_concat_checks_row_counts_and_is_lenient_for_info() -> None:
    with pytest.raises(ValueError, match="rows per part"):
        concat_batches([{"a": np.zeros((2, 1))}, {"a": np.zeros((2, 1))}], [2, 1])
    info = concat_batches([{"tag": ["x", "x"], "n": 2, "only": 1}, {"tag": ["y"], "n": 1}], [2, 1], strict=False)
    assert info == {"tag": ["x", "x", "y"], "n": 2, "only": 1}


def test_parse_host_specs() -> None:
    assert parse_host("gpu-box") == ("gpu-box", 5555)
    assert parse_host("gpu-box:6000") == ("gpu-box", 6000)
    assert parse_host("tcp://10.0.0.2:7000") == ("10.0.0.2", 7000)
    assert parse_host("[::1]:5556") == ("::1", 5556)
    assert parse_host("::1") == ("::1", 5555)
    assert parse_host(("h", 1)) == ("h", 1)
    assert parse_hosts("a:5555, b:5556") == [("a", 5555), ("b", 5556)]
    assert parse_hosts([("a", 1), "b"]) == [("a", 1), ("b", 5555)]
    assert parse_hosts(("a", 1)) == [("a", 1)]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("", "empty"),
        ("a:", "not a number"),
        ("a:xyz", "not a number"),
        ("a:70000", "outside"),
        ("a,,b", "empty entry"),
        ("http://a:1", "tcp://"),
        ("[::1", "missing"),
    ],
)
def test_parse_host_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_hosts(spec)
