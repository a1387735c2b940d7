"""OpenVLA's body encoding against json-numpy itself (what the stock server and client use), and hostile arrays."""

from __future__ import annotations

import json

import json_numpy
import numpy as np
import pytest
from arena_openvla.wire.codec import decode_body, decode_reply, encode_body, encode_reply

from arena.remote.errors import RemoteCodecError

ARRAYS = [
    np.arange(224 * 224 * 3, dtype=np.uint8).reshape(224, 224, 3),
    np.linspace(-1, 1, 7, dtype=np.float32),
    np.arange(6, dtype=np.float64).reshape(2, 3)[:, ::2],  # not contiguous
    np.array([True, False]),
    np.float32(0.5),
]


@pytest.mark.parametrize("value", ARRAYS, ids=lambda a: f"{a.dtype}{getattr(a, 'shape', ())}")
def test_json_numpy_reads_what_we_write_and_we_read_what_it_writes(value) -> None:
    body = {"image": value, "instruction": "pick it up"}
    theirs = json_numpy.loads(encode_body(body).decode())
    np.testing.assert_array_equal(theirs["image"], value)
    ours, double = decode_body(json_numpy.dumps(body).encode())
    assert not double and ours["instruction"] == "pick it up"
    np.testing.assert_array_equal(ours["image"], value)
    assert np.asarray(ours["image"]).dtype == np.asarray(value).dtype


def test_the_double_encoded_form_both_ways() -> None:
    body = {"image": ARRAYS[1], "instruction": "x"}
    outer = json.loads(encode_body(body, double_encoded=True))
    np.testing.assert_array_equal(json_numpy.loads(outer["encoded"])["image"], ARRAYS[1])
    ours, double = decode_body(json.dumps({"encoded": json_numpy.dumps(body)}).encode())
    assert double
    np.testing.assert_array_equal(ours["image"], ARRAYS[1])
    reply = encode_reply(ARRAYS[1], double_encoded=True)
    np.testing.assert_array_equal(json_numpy.loads(json.loads(reply)), ARRAYS[1])
    np.testing.assert_array_equal(decode_reply(json.dumps(json_numpy.dumps(ARRAYS[1])).encode(), True), ARRAYS[1])


@pytest.mark.parametrize(
    ("array", "message"),
    [
        ({"__numpy__": "AAAA", "dtype": "|O", "shape": [1]}, "dtype object refused"),
        ({"__numpy__": "AAAA", "dtype": [["a", "<i4"]], "shape": [1]}, "refused"),
        ({"__numpy__": "AAAA", "dtype": "|u1", "shape": [1000000, 1000000]}, "does not fit dtype uint8"),
        ({"__numpy__": "AAAA", "dtype": "|u1", "shape": [-3]}, "shape must be a list of sizes"),
        ({"__numpy__": "not base64!", "dtype": "|u1", "shape": [3]}, "not a json-numpy body"),
        ({"__numpy__": "AAAA", "dtype": "?weird", "shape": [3]}, "not a json-numpy body"),
    ],
)
def test_hostile_arrays_are_refused_before_any_large_allocation(array, message) -> None:
    with pytest.raises(RemoteCodecError, match=message):
        decode_body(json.dumps({"image": array}).encode())
