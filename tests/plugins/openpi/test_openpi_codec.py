"""msgpack-numpy codec against hand-written bytes of the documented openpi wire format."""

from __future__ import annotations

import numpy as np
import pytest

from arena_openpi.wire.codec import decode, encode
from arena_openpi.wire.errors import OpenpiCodecError, OpenpiMessageTooLargeError

pytestmark = pytest.mark.timeout(20)

# {b"__ndarray__": True, b"data": <bin>, b"dtype": "|u1", b"shape": [1, 3]} for [[1, 2, 3]] uint8,
# written out byte by byte: fixmap(4), bin8 keys, true, bin8 data, fixstr dtype, fixarray shape.
ARRAY_U8_1x3 = (
    b"\x84\xc4\x0b__ndarray__\xc3\xc4\x04data\xc4\x03\x01\x02\x03\xc4\x05dtype\xa3|u1\xc4\x05shape\x92\x01\x03"
)
# float32 [1.0, -2.0], little endian: 0x3f800000, 0xc0000000.
ARRAY_F4_2 = (
    b"\x84"
    b"\xc4\x0b__ndarray__"
    b"\xc3"
    b"\xc4\x04data"
    b"\xc4\x08\x00\x00\x80\x3f\x00\x00\x00\xc0"
    b"\xc4\x05dtype"
    b"\xa3<f4"
    b"\xc4\x05shape"
    b"\x91\x02"
)
# np.float32(1.5): data is the Python value, packed by msgpack as float64 (0xcb).
SCALAR_F4 = b"\x83\xc4\x0d__npgeneric__\xc3\xc4\x04data\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00\xc4\x05dtype\xa3<f4"
# np.int64(7): data is the positive fixint 7.
SCALAR_I8 = b"\x83\xc4\x0d__npgeneric__\xc3\xc4\x04data\x07\xc4\x05dtype\xa3<i8"


def test_encode_array_matches_hand_built_bytes() -> None:
    assert encode(np.array([[1, 2, 3]], dtype=np.uint8)) == ARRAY_U8_1x3
    assert encode(np.array([1.0, -2.0], dtype=np.float32)) == ARRAY_F4_2


def test_encode_numpy_scalars_match_hand_built_bytes() -> None:
    assert encode(np.float32(1.5)) == SCALAR_F4
    assert encode(np.int64(7)) == SCALAR_I8


def test_encode_message_map_uses_str_keys_and_tagged_values() -> None:
    obs = {"observation/image": np.array([[1, 2, 3]], dtype=np.uint8), "prompt": "hi", "t": np.int64(7)}
    expected = b"\x83\xb1observation/image" + ARRAY_U8_1x3 + b"\xa6prompt\xa2hi" + b"\xa1t" + SCALAR_I8
    assert encode(obs) == expected


def test_non_contiguous_array_is_sent_in_c_order() -> None:
    fortran = np.asfortranarray(np.array([[1, 2, 3]], dtype=np.uint8))
    assert encode(fortran) == ARRAY_U8_1x3
    strided = np.array([1, 9, 2, 9, 3], dtype=np.uint8)[::2].reshape(1, 3)
    assert encode(strided) == ARRAY_U8_1x3


def test_decode_hand_built_bytes() -> None:
    msg = decode(b"\x82\xa1a" + ARRAY_F4_2 + b"\xa1s" + SCALAR_F4)
    arr, scalar = msg["a"], msg["s"]
    assert arr.dtype == np.dtype("<f4") and arr.shape == (2,)
    np.testing.assert_array_equal(arr, [1.0, -2.0])
    assert isinstance(scalar, np.float32) and scalar == np.float32(1.5)
    i8 = decode(SCALAR_I8)
    assert isinstance(i8, np.int64) and i8 == 7
    u8 = decode(ARRAY_U8_1x3)
    assert u8.shape == (1, 3) and u8.dtype == np.uint8 and u8.tolist() == [[1, 2, 3]]


def test_decoded_arrays_are_read_only_zero_copy_views() -> None:
    arr = decode(ARRAY_U8_1x3)
    assert not arr.flags.writeable
    assert not arr.flags.owndata  # a view on the received bytes, not a copy
    with pytest.raises(ValueError):
        arr[0, 0] = 5
    writable = arr.copy()
    writable[0, 0] = 5  # the documented way to get a mutable array


def test_round_trip_keeps_dtype_byte_order_and_shape() -> None:
    values = {
        "f4": np.arange(6, dtype="<f4").reshape(2, 3),
        "be": np.arange(4, dtype=">i2"),
        "empty": np.zeros((0, 7), dtype=np.float32),
        "zero_d": np.array(3.5),
        "bool": np.array([True, False]),
        "u1_img": np.random.default_rng(0).integers(0, 255, (4, 4, 3), dtype=np.uint8),
        "str_arr": np.array(["ab", "c"]),
        "nested": [{"x": np.float16(2.0)}, (1, 2), None, b"raw"],
    }
    out = decode(encode(values))
    for key in ("f4", "be", "empty", "zero_d", "bool", "u1_img", "str_arr"):
        assert out[key].dtype == values[key].dtype, key
        assert out[key].shape == values[key].shape, key
        np.testing.assert_array_equal(out[key], values[key])
    assert isinstance(out["nested"][0]["x"], np.float16)
    assert out["nested"][1:] == [[1, 2], None, b"raw"]  # msgpack has no tuple


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (np.zeros(2, dtype=np.complex64), "complex"),
        (np.complex128(1 + 2j), "complex"),
        (np.array([object()], dtype=object), "object"),
        (np.zeros(2, dtype=[("a", "<i4"), ("b", "<f4")]), "void/structured"),
        (np.zeros(2, dtype="V4"), "void/structured"),
    ],
)
def test_encode_refuses_void_object_complex(value: object, kind: str) -> None:
    with pytest.raises(OpenpiCodecError, match=kind):
        encode({"x": value})


@pytest.mark.parametrize(("dtype", "kind"), [(b"<c8", "complex"), (b"|O", "object"), (b"|V4", "void")])
def test_decode_refuses_void_object_complex(dtype: bytes, kind: str) -> None:
    raw = (
        b"\x84\xc4\x0b__ndarray__\xc3\xc4\x04data\xc4\x08"
        + b"\x00" * 8
        + b"\xc4\x05dtype"
        + bytes([0xA0 + len(dtype)])
        + dtype
        + b"\xc4\x05shape\x91\x01"
    )
    with pytest.raises(OpenpiCodecError, match=kind):
        decode(raw)


def test_unencodable_python_object_has_clear_error() -> None:
    with pytest.raises(OpenpiCodecError, match="cannot encode object of type builtins.set"):
        encode({"x": {1, 2}})


def test_malformed_arrays_are_rejected() -> None:
    short = ARRAY_U8_1x3.replace(b"\xc4\x03\x01\x02\x03", b"\xc4\x02\x01\x02")
    with pytest.raises(OpenpiCodecError, match="do not match shape"):
        decode(short)
    with pytest.raises(OpenpiCodecError, match="unknown dtype"):
        decode(ARRAY_U8_1x3.replace(b"\xa3|u1", b"\xa3zzz"))
    with pytest.raises(OpenpiCodecError, match="invalid openpi message"):
        decode(b"\xc1")


def test_decode_size_limit() -> None:
    payload = encode({"x": np.zeros(1000, dtype=np.uint8)})
    assert decode(payload, max_bytes=len(payload))["x"].shape == (1000,)
    with pytest.raises(OpenpiMessageTooLargeError, match=rf"{len(payload)} bytes exceeds the limit of 100 bytes"):
        decode(payload, max_bytes=100)


def test_bytes_equal_to_openpi_client_packer() -> None:
    """Cross-check with openpi's own msgpack_numpy where it is installed."""
    msgpack_numpy = pytest.importorskip("openpi_client.msgpack_numpy", reason="openpi-client not installed")
    rng = np.random.default_rng(1)
    obs = {
        "observation/image": rng.integers(0, 255, (224, 224, 3), dtype=np.uint8),
        "observation/wrist_image": rng.integers(0, 255, (224, 224, 3), dtype=np.uint8),
        "observation/state": rng.standard_normal(8).astype(np.float32),
        "prompt": "put the bowl on the plate",
        "step": np.int32(3),
        "weight": np.float64(0.5),
    }
    assert encode(obs) == msgpack_numpy.packb(obs)
    theirs = msgpack_numpy.unpackb(encode(obs))
    ours = decode(msgpack_numpy.packb(obs))
    for key in ("observation/image", "observation/state"):
        np.testing.assert_array_equal(theirs[key], obs[key])
        np.testing.assert_array_equal(ours[key], obs[key])
    assert ours["step"] == theirs["step"] == 3 and type(ours["step"]) is np.int32


def test_openpi_errors_are_the_kits():
    import pickle

    from arena.remote import errors as kit
    from arena_openpi.wire.errors import OpenpiAuthError, OpenpiCodecError, OpenpiConnectionError, OpenpiServerError

    assert issubclass(OpenpiCodecError, kit.RemoteCodecError) and issubclass(OpenpiAuthError, kit.RemoteAuthError)
    assert issubclass(OpenpiConnectionError, kit.RemoteConnectionError)
    err = OpenpiServerError("Traceback: boom", endpoint="ws://a:1")
    back = pickle.loads(pickle.dumps(err))
    assert (
        isinstance(err, kit.RemoteServerError) and back.server_traceback == "Traceback: boom" and str(back) == str(err)
    )
