"""Codec tests: exact bytes against hand-built expectations from the documented formats."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest

from arena_gr00t import (
    ActionConfig,
    Gr00tCodecError,
    Gr00tMessageTooLargeError,
    ModalityConfig,
    build_request,
    decode,
    encode,
)
from arena_gr00t.wire.codec import ndarray_to_npy, npy_to_ndarray

pytestmark = pytest.mark.timeout(20)


# --- hand-built msgpack pieces (from the msgpack spec, not from the msgpack library) ---------


def fixstr(text: str) -> bytes:
    raw = text.encode()
    assert len(raw) < 32
    return bytes([0xA0 | len(raw)]) + raw


TRUE, FALSE, NIL = b"\xc3", b"\xc2", b"\xc0"


def fixmap(n: int) -> bytes:
    return bytes([0x80 | n])


def fixarray(n: int) -> bytes:
    return bytes([0x90 | n])


def bin8(payload: bytes) -> bytes:
    assert len(payload) < 256
    return b"\xc4" + bytes([len(payload)]) + payload


def ndarray_map(npy: bytes) -> bytes:
    return fixmap(2) + fixstr("__ndarray_class__") + TRUE + fixstr("as_npy") + bin8(npy)


# .npy v1.0 files written out by hand: magic, version 1.0, uint16 LE header length, header
# dict text, space padding (np.save leaves 21 - len(str(shape[0])) spare spaces, then pads so
# that 10 + header length is a multiple of 64), newline, raw little-endian data.
NPY_U8_3 = (
    b"\x93NUMPY\x01\x00"
    + b"\x76\x00"  # header length 118 -> total header 128
    + b"{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }"
    + b" " * 60
    + b"\n"
    + b"\x01\x02\x03"
)
NPY_F4_2 = (
    b"\x93NUMPY\x01\x00"
    + b"\x76\x00"
    + b"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
    + b" " * 60
    + b"\n"
    + b"\x00\x00\x80\x3f"  # 1.0
    + b"\x00\x00\x00\xc0"  # -2.0
)
NPY_I8_SCALAR = (
    b"\x93NUMPY\x01\x00"
    + b"\x76\x00"
    + b"{'descr': '<i8', 'fortran_order': False, 'shape': (), }"
    + b" " * 62
    + b"\n"
    + b"\x05\x00\x00\x00\x00\x00\x00\x00"
)
NPY_F4_2x3 = (
    b"\x93NUMPY\x01\x00"
    + b"\x76\x00"
    + b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
    + b" " * 58
    + b"\n"
    + b"\x00\x00\x00\x00"
    + b"\x00\x00\x80\x3f"
    + b"\x00\x00\x00\x40"  # 0, 1, 2
    + b"\x00\x00\x40\x40"
    + b"\x00\x00\x80\x40"
    + b"\x00\x00\xa0\x40"  # 3, 4, 5
)


@pytest.mark.parametrize(
    "array, expected",
    [
        (np.array([1, 2, 3], dtype=np.uint8), NPY_U8_3),
        (np.array([1.0, -2.0], dtype=np.float32), NPY_F4_2),
        (np.array(5, dtype=np.int64), NPY_I8_SCALAR),
        (np.arange(6, dtype=np.float32).reshape(2, 3), NPY_F4_2x3),
    ],
)
def test_npy_bytes_match_hand_built(array: np.ndarray, expected: bytes) -> None:
    assert len(expected) - array.nbytes == 128
    assert bytes(ndarray_to_npy(array)) == expected
    back = npy_to_ndarray(expected)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_message_with_array_matches_hand_built_bytes() -> None:
    msg = {"a": np.array([1, 2, 3], dtype=np.uint8)}
    expected = fixmap(1) + fixstr("a") + ndarray_map(NPY_U8_3)
    assert encode(msg) == expected
    decoded = decode(expected)
    assert list(decoded) == ["a"]
    np.testing.assert_array_equal(decoded["a"], [1, 2, 3])


def test_request_envelope_bytes_and_key_order() -> None:
    obs = {"state.x": np.array([1.0, -2.0], dtype=np.float32)}
    expected = (
        fixmap(3)
        + fixstr("endpoint")
        + fixstr("get_action")
        + fixstr("data")
        + fixmap(2)
        + fixstr("observation")
        + fixmap(1)
        + fixstr("state.x")
        + ndarray_map(NPY_F4_2)
        + fixstr("options")
        + NIL
        + fixstr("api_token")
        + fixstr("tok")
    )
    assert encode(build_request("get_action", {"observation": obs, "options": None}, "tok")) == expected
    # No data and no token: only the endpoint.
    assert encode(build_request("ping")) == fixmap(1) + fixstr("endpoint") + fixstr("ping")


def test_numpy_scalars_become_python_numbers() -> None:
    msg = {
        "f32": np.float32(1.5),
        "f64": np.float64(-2.0),
        "i64": np.int64(-1),
        "u16": np.uint16(300),
        "b": np.bool_(False),
        "s": np.str_("x"),
    }
    expected = (
        fixmap(6)
        + fixstr("f32")
        + b"\xcb"
        + struct.pack(">d", 1.5)  # float64, as Python floats pack
        + fixstr("f64")
        + b"\xcb\xc0\x00\x00\x00\x00\x00\x00\x00"
        + fixstr("i64")
        + b"\xff"  # negative fixint -1
        + fixstr("u16")
        + b"\xcd\x01\x2c"  # uint16 300
        + fixstr("b")
        + FALSE
        + fixstr("s")
        + fixstr("x")
    )
    assert encode(msg) == expected
    assert decode(expected) == {"f32": 1.5, "f64": -2.0, "i64": -1, "u16": 300, "b": False, "s": "x"}


MC_AS_JSON = {
    "delta_indices": [0, 1],
    "modality_keys": ["arm"],
    "sin_cos_embedding_keys": None,
    "mean_std_embedding_keys": ["arm"],
    "action_configs": [{"rep": "RELATIVE", "type": "EEF", "format": "DEFAULT", "state_key": None}],
}


def test_modality_config_bytes_and_round_trip() -> None:
    mc = ModalityConfig(
        delta_indices=[0, 1],
        modality_keys=["arm"],
        mean_std_embedding_keys=["arm"],
        action_configs=[ActionConfig(rep="RELATIVE", type="EEF", format="DEFAULT")],
    )
    as_json = (
        fixmap(5)
        + fixstr("delta_indices")
        + fixarray(2)
        + b"\x00\x01"
        + fixstr("modality_keys")
        + fixarray(1)
        + fixstr("arm")
        + fixstr("sin_cos_embedding_keys")
        + NIL
        + fixstr("mean_std_embedding_keys")
        + fixarray(1)
        + fixstr("arm")
        + fixstr("action_configs")
        + fixarray(1)
        + fixmap(4)
        + fixstr("rep")
        + fixstr("RELATIVE")
        + fixstr("type")
        + fixstr("EEF")
        + fixstr("format")
        + fixstr("DEFAULT")
        + fixstr("state_key")
        + NIL
    )
    expected = (
        fixmap(1)
        + fixstr("action")
        + fixmap(2)
        + fixstr("__ModalityConfig_class__")
        + TRUE
        + fixstr("as_json")
        + as_json
    )
    assert encode({"action": mc}) == expected
    back = decode(expected)["action"]
    assert back == mc
    assert back.horizon == 2
    assert back.to_json_dict() == MC_AS_JSON


def test_modality_config_accepts_older_json_string() -> None:
    msg = {"__ModalityConfig_class__": True, "as_json": json.dumps(MC_AS_JSON)}
    back = decode(encode({"video": msg}))["video"]
    assert back == ModalityConfig.from_json_dict(MC_AS_JSON)
    assert back.action_configs == (ActionConfig("RELATIVE", "EEF", "DEFAULT", None),)


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((2, 1, 8, 8, 3), np.uint8),
        np.random.default_rng(0).random((3, 4)).astype(np.float32)[:, ::2],  # non-contiguous
        np.asfortranarray(np.random.default_rng(1).random((3, 4))),
        np.zeros((0, 5), np.float32),
        np.array([True, False]),
        np.array(["ab", "c"]),
        np.arange(4, dtype=">i4"),
        np.arange(3, dtype=np.float16),
        np.array([1 + 2j], dtype=np.complex64),
        np.zeros(2, dtype=[("a", "<f4"), ("b", "u1")]),
        np.array(["2024-01-01"], dtype="M8[D]"),
        np.arange(200, dtype=np.int64).reshape(2, 100),  # two-digit and three-digit shapes
    ],
    ids=lambda a: f"{a.dtype}-{a.shape}",
)
def test_npy_identical_to_np_save(array: np.ndarray) -> None:
    ref = io.BytesIO()
    np.save(ref, array, allow_pickle=False)
    assert bytes(ndarray_to_npy(array)) == ref.getvalue()
    back = decode(encode({"x": array}))["x"]
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_decode_falls_back_to_numpy_for_unusual_npy() -> None:
    arr = np.arange(6, dtype=np.float64).reshape(2, 3)
    for version in [(2, 0), (3, 0)]:
        buf = io.BytesIO()
        np.lib.format.write_array(buf, arr, version=version)
        np.testing.assert_array_equal(npy_to_ndarray(buf.getvalue()), arr)
    buf = io.BytesIO()
    np.save(buf, np.asfortranarray(arr))
    np.testing.assert_array_equal(npy_to_ndarray(buf.getvalue()), arr)


def test_decoded_arrays_readonly_unless_writable() -> None:
    msg = encode({"x": np.zeros(3, np.float32)})
    assert not decode(msg)["x"].flags.writeable
    x = decode(msg, writable_arrays=True)["x"]
    x[0] = 1.0
    assert x.flags.writeable


def test_object_arrays_refused() -> None:
    with pytest.raises(Gr00tCodecError, match="object"):
        encode({"x": np.array([{"a": 1}], dtype=object)})


def test_unencodable_type_is_a_codec_error() -> None:
    with pytest.raises(Gr00tCodecError, match="set"):
        encode({"x": {1, 2}})


def test_torch_tensors_encode_as_arrays() -> None:
    torch = pytest.importorskip("torch")
    back = decode(encode({"t": torch.arange(3, dtype=torch.float32)}))["t"]
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, [0.0, 1.0, 2.0])


def test_decode_errors_are_clear() -> None:
    with pytest.raises(Gr00tCodecError, match="cannot decode"):
        decode(b"\xc1\x00garbage")
    with pytest.raises(Gr00tCodecError, match="cannot decode"):
        decode(fixmap(1) + b"\x01" + b"\x02")  # int map key: strict_map_key refuses it
    truncated = NPY_U8_3[:-1]
    with pytest.raises(Gr00tCodecError, match="data bytes"):
        decode(fixmap(1) + fixstr("a") + ndarray_map(truncated))
    with pytest.raises(Gr00tCodecError, match="as_npy"):
        decode(fixmap(1) + fixstr("__ndarray_class__") + TRUE)


def test_size_limit_on_decode() -> None:
    msg = encode({"x": np.zeros(1000, np.uint8)})
    with pytest.raises(Gr00tMessageTooLargeError, match=r"exceeds the limit of 1000 bytes") as info:
        decode(msg, max_message_bytes=1000)
    assert info.value.size == len(msg) and info.value.limit == 1000
    assert decode(msg, max_message_bytes=None)["x"].shape == (1000,)


def _upstream_default(obj):
    if isinstance(obj, np.ndarray):
        buf = io.BytesIO()
        np.save(buf, obj, allow_pickle=False)
        return {"__ndarray_class__": True, "as_npy": buf.getvalue()}
    raise TypeError(type(obj))


def test_encoder_matches_msgpack_library_for_all_value_kinds() -> None:
    """The encoder walks containers itself; it must agree with msgpack-python byte for byte."""
    import msgpack

    rng = np.random.default_rng(3)
    msg = {
        "small_ints": [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1],
        "neg_ints": [-1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**63)],
        "floats": [0.0, -1.5, 1e300, float("inf")],
        "consts": [None, True, False],
        "strs": ["", "é", "x" * 31, "x" * 32, "x" * 255, "x" * 256, "x" * 65536],
        "bytes": [b"", b"\x00" * 300, bytearray(b"ab")],
        "tuple": (1, (2, 3)),
        "map16": {f"k{i}": i for i in range(20)},
        "array16": list(range(20)),
        "nested": {"video": {"cam": rng.integers(0, 255, (2, 1, 16, 16, 3), dtype=np.uint8)}},
        "big_array": np.zeros(70000, np.uint8),  # bin32
        "mid_array": np.zeros(300, np.uint8),  # bin16
        "non_contiguous": np.arange(20, dtype=np.float32).reshape(4, 5)[:, 1:3],
        7: "int key",
    }
    assert encode(msg) == msgpack.packb(msg, use_bin_type=True, default=_upstream_default)
    back = decode(encode({k: v for k, v in msg.items() if k != 7}))
    assert back["strs"] == msg["strs"] and back["tuple"] == [1, [2, 3]]
    np.testing.assert_array_equal(back["non_contiguous"], msg["non_contiguous"])


def test_numpy_scalars_nested_in_lists() -> None:
    assert decode(encode({"x": [np.int32(1), np.float32(0.5), (np.bool_(True),)]})) == {"x": [1, 0.5, [True]]}


def test_gr00t_errors_are_the_kits_and_keep_their_attributes_across_pickling():
    import pickle

    from arena.remote import errors as kit
    from arena_gr00t.wire.errors import Gr00tCodecError, Gr00tServerError, Gr00tTimeoutError

    assert issubclass(Gr00tCodecError, kit.RemoteCodecError) and issubclass(Gr00tServerError, kit.RemoteServerError)
    assert issubclass(Gr00tTimeoutError, kit.RemoteTimeoutError)
    err = Gr00tServerError("boom", endpoint="get_action", address="a:1")
    back = pickle.loads(pickle.dumps(err))
    assert (back.message, back.endpoint, back.address, str(back)) == ("boom", "get_action", "a:1", str(err))
    late = Gr00tTimeoutError("late", host="a", port=1, endpoint="ping", attempts=3, elapsed_s=1.0)
    back = pickle.loads(pickle.dumps(late))
    assert (back.host, back.port, back.attempts, str(back)) == ("a", 1, 3, "late")
