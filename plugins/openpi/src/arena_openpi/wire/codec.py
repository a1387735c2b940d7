"""msgpack-numpy, byte-compatible with openpi's ``openpi_client.msgpack_numpy``.

Wire format (map keys are msgpack *bin*, values as listed)::

    ndarray:       {b"__ndarray__": True, b"data": <bin, C-order bytes>, b"dtype": <str dtype.str>, b"shape": [dims]}
    numpy scalar:  {b"__npgeneric__": True, b"data": <python value>, b"dtype": <str dtype.str>}

Key order and value types match the upstream packer so our bytes equal the stock client's
bytes. Everything else is plain msgpack (``str`` as str, ``bytes`` as bin). Python ``float``
subclasses such as ``np.float64`` are packed by msgpack itself as plain floats, exactly as
upstream does. Structured/void, object and complex dtypes are refused in both directions
because upstream refuses them (object arrays would need pickle, which is unsafe on a network).

Decoded arrays are zero-copy views (``np.frombuffer``) on the received bytes and therefore
read-only: copy them before writing in place.
"""

from __future__ import annotations

import math
from typing import Any, Final

import msgpack
import numpy as np

from arena.remote.msgpack_limits import DEFAULT_MAX_DEPTH, DEFAULT_MAX_OBJECTS, WireLimitError, scan
from arena_openpi.wire.errors import OpenpiCodecError, OpenpiMessageTooLargeError

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "REFUSED_DTYPE_KINDS",
    "decode",
    "encode",
]

#: Default cap on one message (request or reply). openpi itself has no cap; ours exists so a
#: corrupt or hostile peer cannot make us allocate unbounded memory. Rule: one request carries
#: ONE observation, and a camera frame costs H*W*3 bytes (0.15 MiB at 224x224, 3 MiB at
#: 1024x1024), so 16 MiB holds four 1024x1024 cameras plus state; raise it for more.
DEFAULT_MAX_MESSAGE_BYTES: Final[int] = 16 * 1024 * 1024

#: numpy dtype kinds that openpi's msgpack-numpy refuses: void/structured, object, complex.
REFUSED_DTYPE_KINDS: Final[dict[str, str]] = {"V": "void/structured", "O": "object", "c": "complex"}

_NDARRAY: Final = b"__ndarray__"
_NPGENERIC: Final = b"__npgeneric__"
_DATA: Final = b"data"
_DTYPE: Final = b"dtype"
_SHAPE: Final = b"shape"


def _check_dtype(dtype: np.dtype, what: str) -> None:
    kind = dtype.kind
    if kind in REFUSED_DTYPE_KINDS:
        raise OpenpiCodecError(
            f"cannot {what} numpy dtype {dtype.str!r} (kind {kind!r}, {REFUSED_DTYPE_KINDS[kind]}): "
            "openpi's msgpack-numpy supports only bool, integer, float, bytes, str and datetime dtypes"
        )


def _encode_hook(obj: Any) -> Any:
    """msgpack ``default`` hook: called only for objects msgpack cannot pack natively."""
    if isinstance(obj, np.ndarray):
        _check_dtype(obj.dtype, "encode")
        # dtype.str keeps the byte order ("<f4", "|u1"); tobytes() is always C order.
        return {_NDARRAY: True, _DATA: obj.tobytes(), _DTYPE: obj.dtype.str, _SHAPE: obj.shape}
    if isinstance(obj, np.generic):
        _check_dtype(obj.dtype, "encode")
        value = obj.item()
        if isinstance(value, np.generic):
            # e.g. np.longdouble: item() cannot produce a Python value; upstream would recurse.
            raise OpenpiCodecError(f"cannot encode numpy scalar of dtype {obj.dtype.str!r}: no exact Python value")
        return {_NPGENERIC: True, _DATA: value, _DTYPE: obj.dtype.str}
    raise OpenpiCodecError(
        f"cannot encode object of type {type(obj).__module__}.{type(obj).__qualname__}: openpi messages "
        "may contain only maps, lists, str, bytes, numbers, bool, None, numpy arrays and numpy scalars"
    )


def _wire_dtype(raw: Any) -> np.dtype:
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", errors="replace")
    if not isinstance(raw, str):
        raise OpenpiCodecError(f"malformed msgpack-numpy value: dtype must be a string, got {type(raw).__name__}")
    try:
        dtype = np.dtype(raw)
    except Exception as exc:  # TypeError, ValueError, SyntaxError, ... for junk dtype strings
        raise OpenpiCodecError(f"malformed msgpack-numpy value: unknown dtype {raw!r}") from exc
    _check_dtype(dtype, "decode")
    return dtype


def _decode_array(obj: dict) -> np.ndarray:
    try:
        data, raw_dtype, raw_shape = obj[_DATA], obj[_DTYPE], obj[_SHAPE]
    except KeyError as exc:
        raise OpenpiCodecError(f"malformed msgpack-numpy array: missing key {exc.args[0]!r}") from None
    dtype = _wire_dtype(raw_dtype)
    if dtype.itemsize == 0:  # "|S0", "<U0": numpy would allocate the claimed shape, uninitialised
        raise OpenpiCodecError(f"malformed msgpack-numpy array: zero-width dtype {dtype.str!r}")
    if not isinstance(data, (bytes, bytearray)):
        raise OpenpiCodecError(f"malformed msgpack-numpy array: data must be bin, got {type(data).__name__}")
    if not isinstance(raw_shape, (list, tuple)) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in raw_shape
    ):
        raise OpenpiCodecError(f"malformed msgpack-numpy array: bad shape {raw_shape!r}")
    shape = tuple(raw_shape)
    count = math.prod(shape)
    if len(data) != count * dtype.itemsize:
        raise OpenpiCodecError(
            f"malformed msgpack-numpy array: {len(data)} data bytes do not match shape {shape} "
            f"of dtype {dtype.str!r} ({count * dtype.itemsize} bytes expected)"
        )
    arr = np.frombuffer(data, dtype=dtype, count=count).reshape(shape)  # zero-copy view: nothing allocated
    arr.flags.writeable = False  # bytes views already are; bytearray ones must not differ
    return arr


def _decode_hook(obj: dict) -> Any:
    """msgpack ``object_hook``: turns the tagged maps back into numpy values."""
    if _NDARRAY in obj:
        return _decode_array(obj)
    if _NPGENERIC in obj:
        if _DATA not in obj or _DTYPE not in obj:
            raise OpenpiCodecError("malformed msgpack-numpy scalar: needs data and dtype")
        dtype = _wire_dtype(obj[_DTYPE])
        try:
            return dtype.type(obj[_DATA])
        except (TypeError, ValueError, OverflowError) as exc:
            raise OpenpiCodecError(f"malformed msgpack-numpy scalar of dtype {dtype.str!r}: {exc}") from exc
    return obj


def encode(obj: Any) -> bytes:
    """Pack ``obj`` (usually a ``dict``) into one openpi message.

    Raises :class:`OpenpiCodecError` for values the protocol cannot carry.
    """
    try:
        return msgpack.packb(obj, default=_encode_hook, use_bin_type=True)
    except OpenpiCodecError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise OpenpiCodecError(f"cannot encode openpi message: {exc}") from exc


def decode(
    data: bytes | bytearray | memoryview,
    *,
    max_bytes: int | None = DEFAULT_MAX_MESSAGE_BYTES,
    max_objects: int = DEFAULT_MAX_OBJECTS,
) -> Any:
    """Unpack one openpi message; every failure is an :class:`OpenpiCodecError`.

    ``max_bytes`` bounds the message size (``None``: no limit, as upstream); a larger message
    raises :class:`OpenpiMessageTooLargeError` before anything is allocated. The structure is
    checked before decoding (at most ``max_objects`` values, bounded nesting), so a decode
    allocates at most about the message's size (:mod:`arena.remote.msgpack_limits`).
    """
    size = len(data) if not isinstance(data, memoryview) else data.nbytes
    if max_bytes is not None and size > max_bytes:
        raise OpenpiMessageTooLargeError(
            f"openpi message of {size} bytes exceeds the limit of {max_bytes} bytes (max_message_bytes)"
        )
    try:
        scan(data, max_objects, DEFAULT_MAX_DEPTH)
        return msgpack.unpackb(data, object_hook=_decode_hook, raw=False)
    except OpenpiCodecError:
        raise
    except WireLimitError as exc:
        raise OpenpiCodecError(f"invalid openpi message ({size} bytes): {exc}") from exc
    except Exception as exc:  # msgpack's many errors, MemoryError, RecursionError: all the documented type
        raise OpenpiCodecError(f"invalid openpi message ({size} bytes): {type(exc).__name__}: {exc}") from exc
