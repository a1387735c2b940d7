"""Property-based tests of every decoder: only documented types come out, only documented errors are
raised, and a decode allocates at most a small multiple of its input."""

from __future__ import annotations

import tracemalloc

import msgpack
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arena.remote.msgpack_limits import WireLimitError, peek_str, scan
from arena_gr00t.wire.codec import decode as gr00t_decode
from arena_gr00t.wire.codec import ndarray_to_npy, npy_to_ndarray
from arena_gr00t.wire.errors import Gr00tCodecError
from arena_openpi.wire.codec import decode as openpi_decode
from arena_openpi.wire.codec import encode as openpi_encode
from arena_openpi.wire.errors import OpenpiCodecError

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: bytes a decode may allocate beyond its input: a bounded number of small objects
SLACK = 2 * 2**20

DTYPES = ["<f4", "<f8", "|u1", "<i8", "|b1", "|S3", "<U2", "|S0", "<U0", "|O", "|V4", "<c8", ">i2", "junk", "M8[s]"]
leaves = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(), st.text(max_size=20),
                   st.binary(max_size=64))  # fmt: skip
values = st.recursive(leaves, lambda c: st.one_of(st.lists(c, max_size=6), st.dictionaries(st.text(max_size=8), c, max_size=6)), max_leaves=40)  # fmt: skip
shapes = st.lists(st.one_of(st.integers(0, 5), st.just(10**9), st.just(-1), st.just(2**62)), max_size=4)


def openpi_array() -> st.SearchStrategy:
    return st.fixed_dictionaries(
        {
            b"__ndarray__": st.just(True),
            b"data": st.binary(max_size=64),
            b"dtype": st.sampled_from(DTYPES),
            b"shape": shapes,
        }
    )


def gr00t_array() -> st.SearchStrategy:
    def npy(dtype: str, shape: list[int], data: bytes, version: int) -> bytes:
        text = f"{{'descr': {dtype!r}, 'fortran_order': False, 'shape': {tuple(shape)!r}, }}".ljust(100) + "\n"
        width = 2 if version == 1 else 4
        return b"\x93NUMPY" + bytes((version, 0)) + len(text).to_bytes(width, "little") + text.encode() + data

    payload = st.one_of(
        st.builds(npy, st.sampled_from(DTYPES), shapes, st.binary(max_size=64), st.sampled_from([1, 2, 3])),
        st.binary(max_size=200),
        st.builds(lambda a: ndarray_to_npy(a), st.sampled_from([np.zeros(3, np.float32), np.arange(6).reshape(2, 3)])),
    )
    return st.fixed_dictionaries({"__ndarray_class__": st.just(True), "as_npy": payload})


def measured(fn, data):  # noqa: ANN001, ANN201
    tracemalloc.start()
    try:
        out = fn(data)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return out, peak


def only_documented_types(value: object) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            only_documented_types(k)
            only_documented_types(v)
    elif isinstance(value, list):
        for v in value:
            only_documented_types(v)
    else:
        assert value is None or isinstance(value, (bool, int, float, str, bytes, np.ndarray, np.generic)), type(value)


def decodes_safely(decode, error: type, data: bytes) -> None:  # noqa: ANN001
    """``decode(data)`` raises only ``error`` or returns documented types, allocating a bounded amount."""
    try:
        out, peak = measured(decode, data)
    except error:
        return
    only_documented_types(out)
    assert peak <= 8 * len(data) + SLACK


@SETTINGS
@given(st.one_of(st.binary(max_size=4096), values.map(lambda v: msgpack.packb(v, use_bin_type=True))))
def test_scan_accepts_or_refuses_any_bytes(data: bytes) -> None:
    try:
        count = scan(data)
    except WireLimitError:
        return
    assert count >= 1
    peek_str(data, "api_token")  # never raises on what scan accepted


@SETTINGS
@given(st.one_of(st.binary(max_size=4096), st.recursive(gr00t_array() | values, lambda c: st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=8).map(lambda v: msgpack.packb(v, use_bin_type=True))))  # fmt: skip
def test_gr00t_decode(data: bytes) -> None:
    decodes_safely(gr00t_decode, Gr00tCodecError, data)


@SETTINGS
@given(st.one_of(st.binary(max_size=300), gr00t_array().map(lambda m: m["as_npy"])))
def test_npy_decode_returns_only_ndarrays(data: bytes) -> None:
    try:
        out, peak = measured(npy_to_ndarray, data)
    except Gr00tCodecError:
        return
    assert type(out) is np.ndarray and not out.dtype.hasobject
    assert peak <= 8 * len(data) + SLACK


@SETTINGS
@given(st.one_of(st.binary(max_size=4096), st.recursive(openpi_array() | values, lambda c: st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=8).map(lambda v: msgpack.packb(v, use_bin_type=True))))  # fmt: skip
def test_openpi_decode(data: bytes) -> None:
    decodes_safely(openpi_decode, OpenpiCodecError, data)


@SETTINGS
@given(st.binary(min_size=1, max_size=64), st.integers(0, 200))
def test_mutated_valid_openpi_messages(noise: bytes, where: int) -> None:
    valid = bytearray(openpi_encode({"observation/state": np.arange(8, dtype=np.float32), "prompt": "go"}))
    valid[where % len(valid) : where % len(valid) + len(noise)] = noise
    decodes_safely(openpi_decode, OpenpiCodecError, bytes(valid))
