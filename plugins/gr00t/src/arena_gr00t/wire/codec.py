"""msgpack codec byte-compatible with Isaac-GR00T's `MsgSerializer`.

Every GR00T message is one msgpack value (`use_bin_type=True`; decoded with `raw=False`,
`strict_map_key=True`). Two extension maps ride inside it:

- ndarray: `{"__ndarray_class__": True, "as_npy": <bytes of an .npy v1.0 file>}`
- ModalityConfig: `{"__ModalityConfig_class__": True, "as_json": {...}}`

Why not just `np.save` into a `BytesIO` per array, as upstream does: for camera-sized arrays
that costs several extra copies and large allocations per message, plus `ast.literal_eval` of
the header on every decode. Here the encoder walks containers itself and emits a list of
chunks (msgpack headers, an npy header written directly, byte-identical to `np.save` and
cached per dtype/shape, and a zero-copy view of the array data), joined once at the end: array
data is copied exactly once. Other leaves are packed by msgpack itself. Decoding is
`msgpack.unpackb` plus `np.frombuffer` over the bytes msgpack produced (npy headers parsed
once per distinct header and cached). Anything unusual (structured dtypes, fortran order on
decode, npy v2/v3) falls back to numpy's own header parser and writer; a payload that is not npy (an
.npz archive, a pickle) is refused by name, never handed to `np.load`.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

import attrs
import msgpack
import numpy as np

from arena.remote.msgpack_limits import DEFAULT_MAX_DEPTH, DEFAULT_MAX_OBJECTS, WireLimitError, scan
from arena_gr00t.wire.errors import Gr00tCodecError, Gr00tMessageTooLargeError

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "ActionConfig",
    "ModalityConfig",
    "encode",
    "decode",
    "ndarray_to_npy",
    "npy_to_ndarray",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_BYTES = 32 * 2**20
"""Default message limit (32 MiB). Rule: a camera frame is at most ~0.2 MiB at 256x256 (a few
MiB at 1024x1024); a batch of B envs x C cameras x T frames at 256x256 needs B*C*T*0.2 MiB,
so 32 MiB carries 32 envs x 2 cameras x 2 frames with room to spare. Raise it with
--max-message-bytes for larger images or batches."""

NDARRAY_TAG = "__ndarray_class__"
MODALITY_CONFIG_TAG = "__ModalityConfig_class__"

_NPY_MAGIC = b"\x93NUMPY"
_NPY_ALIGN = 64  # numpy's ARRAY_ALIGN
_NPY_GROWTH_DIGITS = 21  # numpy's GROWTH_AXIS_MAX_DIGITS: spare room np.save leaves in headers
_NPY_V1_PREFIX = 10  # magic (6) + version (2) + little-endian uint16 header length (2)
# dtype kinds whose npy `descr` is simply `dtype.str`: bool, ints, floats, complex, bytes, str.
_FAST_KINDS = frozenset("biufcSU")
_HEADER_RE = re.compile(
    r"\{'descr': '([<>|=][a-zA-Z]\d*)', 'fortran_order': False, "
    r"'shape': \(((?:\d+, )*\d*|\d+,)\), \} *\n"
)
_CACHE_LIMIT = 4096
_encode_header_cache: dict[tuple[str, tuple[int, ...], bool], bytes] = {}
_decode_header_cache: dict[bytes, tuple[np.dtype, tuple[int, ...], int]] = {}


# --------------------------------------------------------------------------- records


@attrs.frozen
class ActionConfig:
    """How one action key is represented (upstream enums travel as their names)."""

    rep: str | None = None  # "RELATIVE" | "ABSOLUTE" | "DELTA" ...
    type: str | None = None  # "EEF" | "NON_EEF"
    format: str | None = None  # "DEFAULT" | "XYZ_ROT6D" ...
    state_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"rep": self.rep, "type": self.type, "format": self.format, "state_key": self.state_key}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ActionConfig:
        return cls(
            rep=_enum_name(d.get("rep")),
            type=_enum_name(d.get("type")),
            format=_enum_name(d.get("format")),
            state_key=d.get("state_key"),
        )


def _enum_name(v: Any) -> Any:
    # Older servers may send "ActionRepresentation.RELATIVE"; keep just the member name.
    if isinstance(v, str) and "." in v:
        return v.rsplit(".", 1)[1]
    return v


def _str_tuple(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        raise TypeError(f"expected a list of strings, got the string {v!r}")
    return tuple(str(x) for x in v)


def _opt_str_tuple(v: Any) -> tuple[str, ...] | None:
    return None if v is None else _str_tuple(v)


def _int_tuple(v: Any) -> tuple[int, ...]:
    return tuple(int(x) for x in v)


def _opt_action_configs(v: Any) -> tuple[ActionConfig, ...] | None:
    if v is None:
        return None
    return tuple(x if isinstance(x, ActionConfig) else ActionConfig.from_dict(x) for x in v)


@attrs.frozen
class ModalityConfig:
    """One modality's sampling config as the server reports it (sequences stored as tuples).

    `len(delta_indices)` is the number of frames T per video/state input, and for the
    action modality the action horizon.
    """

    delta_indices: tuple[int, ...] = attrs.field(converter=_int_tuple)
    modality_keys: tuple[str, ...] = attrs.field(converter=_str_tuple)
    sin_cos_embedding_keys: tuple[str, ...] | None = attrs.field(default=None, converter=_opt_str_tuple)
    mean_std_embedding_keys: tuple[str, ...] | None = attrs.field(default=None, converter=_opt_str_tuple)
    action_configs: tuple[ActionConfig, ...] | None = attrs.field(default=None, converter=_opt_action_configs)

    @property
    def horizon(self) -> int:
        """Number of time steps (frames for inputs, action horizon for the action modality)."""
        return len(self.delta_indices)

    def to_json_dict(self) -> dict[str, Any]:
        """The `as_json` map, keys in upstream field order."""
        return {
            "delta_indices": list(self.delta_indices),
            "modality_keys": list(self.modality_keys),
            "sin_cos_embedding_keys": _opt_list(self.sin_cos_embedding_keys),
            "mean_std_embedding_keys": _opt_list(self.mean_std_embedding_keys),
            "action_configs": (None if self.action_configs is None else [a.to_dict() for a in self.action_configs]),
        }

    @classmethod
    def from_json_dict(cls, d: Mapping[str, Any] | str) -> ModalityConfig:
        """Build from an `as_json` payload: a map (N1.6+) or a JSON string (N1.5)."""
        if isinstance(d, (str, bytes)):
            d = json.loads(d)
        if not isinstance(d, Mapping):
            raise Gr00tCodecError(f"ModalityConfig as_json must be a map, got {type(d).__name__}")
        extra = set(d) - {f.name for f in attrs.fields(cls)}
        if extra:
            log.debug("ignoring unknown ModalityConfig fields %s", sorted(extra))
        try:
            return cls(
                delta_indices=d["delta_indices"],
                modality_keys=d["modality_keys"],
                sin_cos_embedding_keys=d.get("sin_cos_embedding_keys"),
                mean_std_embedding_keys=d.get("mean_std_embedding_keys"),
                action_configs=d.get("action_configs"),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise Gr00tCodecError(f"malformed ModalityConfig {dict(d)!r}: {e}") from e


def _opt_list(v: tuple[str, ...] | None) -> list[str] | None:
    return None if v is None else list(v)


# --------------------------------------------------------------------------- npy


def _npy_header(descr: str, shape: tuple[int, ...], fortran: bool) -> bytes:
    """The header np.save writes for a simple dtype (format v1.0), cached."""
    key = (descr, shape, fortran)
    h = _encode_header_cache.get(key)
    if h is not None:
        return h
    text = f"{{'descr': {descr!r}, 'fortran_order': {fortran!r}, 'shape': {shape!r}, }}"
    if shape:  # np.save leaves room to grow the (first, or for fortran last) axis in place
        text += " " * (_NPY_GROWTH_DIGITS - len(repr(shape[-1 if fortran else 0])))
    hlen = len(text) + 1  # + the terminating newline
    pad = _NPY_ALIGN - (_NPY_V1_PREFIX + hlen) % _NPY_ALIGN
    total = hlen + pad
    if total > 0xFFFF:  # cannot happen for simple dtypes; np.save would switch to v2.0
        raise OverflowError("npy header too long for format 1.0")
    h = _NPY_MAGIC + b"\x01\x00" + total.to_bytes(2, "little") + text.encode("latin1") + b" " * pad + b"\n"
    if len(_encode_header_cache) >= _CACHE_LIMIT:
        _encode_header_cache.clear()
    _encode_header_cache[key] = h
    return h


def _npy_parts(arr: np.ndarray) -> tuple[bytes, Any]:
    """(header, data) whose concatenation is what np.save writes; data is a zero-copy view
    when the array is contiguous (C order, or Fortran order as np.save stores it)."""
    dt = arr.dtype
    if dt.hasobject:
        raise Gr00tCodecError(
            f"cannot encode an array of dtype {dt} (object arrays need pickle, which the GR00T "
            "protocol refuses); convert it to a numeric or string dtype"
        )
    if dt.kind not in _FAST_KINDS or dt.names is not None or dt.subdtype is not None or dt.metadata:
        return _npy_via_numpy(arr), b""
    fortran = arr.ndim > 1 and arr.flags.f_contiguous and not arr.flags.c_contiguous
    src = arr.T if fortran else np.ascontiguousarray(arr)
    header = _npy_header(dt.str, arr.shape, fortran)
    # A flat uint8 view exports a plain byte buffer whatever the dtype or byte order.
    return header, src.reshape(-1).view(np.uint8)


def ndarray_to_npy(arr: np.ndarray) -> bytes:
    """The bytes `np.save(f, arr, allow_pickle=False)` writes, without going through a file."""
    header, data = _npy_parts(arr)
    return header + data.tobytes() if len(data) else header


def _npy_via_numpy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    try:
        np.save(buf, arr, allow_pickle=False)
    except ValueError as e:
        raise Gr00tCodecError(f"cannot encode array of dtype {arr.dtype}: {e}") from e
    return buf.getvalue()


def _parse_npy_header(data: bytes) -> tuple[np.dtype, tuple[int, ...], int, bool]:
    """(dtype, shape, data offset, fortran order) of an ``.npy`` payload, or Gr00tCodecError.

    Only real npy is accepted (magic, a version numpy knows, a header that parses), never a
    zip archive (``.npz``) or a pickle, whatever ``np.load`` would make of it. The canonical
    headers np.save writes take a cached fast path; the cache is filled only by them, and only
    once the payload that carried one proved valid.
    """
    view = memoryview(data)
    if len(view) < _NPY_V1_PREFIX or bytes(view[:6]) != _NPY_MAGIC:
        raise Gr00tCodecError("invalid npy payload: it does not start with the npy magic \\x93NUMPY")
    if bytes(view[6:8]) == b"\x01\x00":
        end = _NPY_V1_PREFIX + int.from_bytes(view[8:10], "little")
        hit = _decode_header_cache.get(bytes(view[_NPY_V1_PREFIX:end]))
        if hit is not None:
            return (*hit, False)
        m = _HEADER_RE.fullmatch(bytes(view[_NPY_V1_PREFIX:end]).decode("latin1"))
        if m is not None:
            try:
                dt = np.dtype(m.group(1))
            except TypeError:
                dt = None
            if dt is not None and not dt.hasobject and dt.kind in _FAST_KINDS and dt.itemsize:
                shape = tuple(int(x) for x in m.group(2).replace(",", " ").split())
                return dt, shape, end, False
    return _parse_npy_header_slow(data)


def _parse_npy_header_slow(data: bytes) -> tuple[np.dtype, tuple[int, ...], int, bool]:
    """numpy's own header parser (literal_eval of a bounded header; never pickle), for v1-v3."""
    fmt = np.lib.format
    f = io.BytesIO(data)
    try:
        version = fmt.read_magic(f)
        reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dt = reader(f)
    except Exception as e:  # numpy raises ValueError, SyntaxError, ... for malformed headers
        raise Gr00tCodecError(f"invalid npy payload: {type(e).__name__}: {e}") from e
    if dt.hasobject:
        raise Gr00tCodecError(f"invalid npy payload: dtype {dt} holds Python objects (pickle), refused")
    if dt.itemsize == 0:
        raise Gr00tCodecError(f"invalid npy payload: zero-width dtype {dt.str!r}")
    if not isinstance(shape, tuple) or any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape):
        raise Gr00tCodecError(f"invalid npy payload: bad shape {shape!r}")
    return dt, tuple(shape), f.tell(), bool(fortran)


def npy_to_ndarray(data: bytes, *, writable: bool = False) -> np.ndarray:
    """Decode `.npy` bytes into an ``np.ndarray`` (allow_pickle=False semantics, nothing else accepted).

    The data length is checked against the header's dtype and shape before anything is
    allocated; the result is a read-only view over ``data`` (no copy), or a copy with
    ``writable=True``.
    """
    dt, shape, offset, fortran = _parse_npy_header(data)
    count = 1
    for n in shape:
        count *= n
    available = len(data) - offset
    if available != count * dt.itemsize:
        raise Gr00tCodecError(
            f"invalid npy payload: header says {dt.str} {shape} ({count * dt.itemsize} bytes) "
            f"but {available} data bytes follow"
        )
    try:
        arr = np.frombuffer(data, dtype=dt, count=count, offset=offset)
        arr = arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)
    except ValueError as e:
        raise Gr00tCodecError(f"invalid npy payload: {e}") from e
    if not fortran and offset <= 0xFFFF + _NPY_V1_PREFIX:
        _remember_header(data, dt, shape, offset)
    return arr.copy() if writable else arr


def _remember_header(data: bytes, dt: np.dtype, shape: tuple[int, ...], offset: int) -> None:
    """Cache a valid payload's header if it is exactly the one np.save writes for (dtype, shape)."""
    if dt.kind not in _FAST_KINDS or dt.names is not None or dt.subdtype is not None:
        return
    try:
        canonical = _npy_header(dt.str, shape, False)
    except OverflowError:
        return
    if offset != len(canonical) or bytes(memoryview(data)[:offset]) != canonical:
        return
    key = canonical[_NPY_V1_PREFIX:]
    if key not in _decode_header_cache:
        if len(_decode_header_cache) >= _CACHE_LIMIT:
            _decode_header_cache.clear()
        _decode_header_cache[key] = (dt, shape, offset)


# --------------------------------------------------------------------------- msgpack


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):  # only reached inside values msgpack packs itself
        return {NDARRAY_TAG: True, "as_npy": ndarray_to_npy(obj)}
    if isinstance(obj, np.generic):
        # Upstream cannot encode numpy scalars; send the equivalent Python number instead.
        value = obj.item()
        if isinstance(value, (bool, int, float, str, bytes)):
            return value
        raise TypeError(f"cannot encode numpy scalar of dtype {obj.dtype}")
    if isinstance(obj, ModalityConfig):
        return {MODALITY_CONFIG_TAG: True, "as_json": obj.to_json_dict()}
    if isinstance(obj, ActionConfig):
        return obj.to_dict()
    if type(obj).__module__ == "torch" and hasattr(obj, "detach"):  # torch.Tensor, no import
        return {NDARRAY_TAG: True, "as_npy": ndarray_to_npy(obj.detach().cpu().numpy())}
    raise TypeError(f"cannot encode object of type {type(obj).__module__}.{type(obj).__qualname__}")


def _str_header(n: int) -> bytes:
    if n < 32:
        return bytes((0xA0 | n,))
    if n < 0x100:
        return b"\xd9" + bytes((n,))
    if n < 0x10000:
        return b"\xda" + n.to_bytes(2, "big")
    return b"\xdb" + n.to_bytes(4, "big")


def _container_header(n: int, fix: int, code16: bytes, code32: bytes) -> bytes:
    if n < 16:
        return bytes((fix | n,))
    if n < 0x10000:
        return code16 + n.to_bytes(2, "big")
    return code32 + n.to_bytes(4, "big")


def _bin_header(n: int) -> bytes:
    if n < 0x100:
        return b"\xc4" + bytes((n,))
    if n < 0x10000:
        return b"\xc5" + n.to_bytes(2, "big")
    if n < 2**32:
        return b"\xc6" + n.to_bytes(4, "big")
    raise Gr00tCodecError(f"array of {n} bytes exceeds msgpack's 4 GiB bin limit")


_NDARRAY_PREFIX = b"\x82" + _str_header(len(NDARRAY_TAG)) + NDARRAY_TAG.encode() + b"\xc3\xa6as_npy"
_MAX_DEPTH = 512  # msgpack-python's nesting limit


def _emit(obj: Any, out: list[Any], depth: int) -> None:
    """Append msgpack chunks for `obj`; containers and arrays here, other leaves via msgpack.

    Output is byte-identical to msgpack.packb(obj, use_bin_type=True, default=...) with
    upstream's array encoding; building a chunk list lets array data be copied exactly once,
    by the final join.
    """
    if depth > _MAX_DEPTH:
        raise Gr00tCodecError(f"message nested deeper than {_MAX_DEPTH} levels")
    if isinstance(obj, str):
        raw = obj.encode("utf-8")
        out.append(_str_header(len(raw)))
        out.append(raw)
    elif isinstance(obj, dict):
        out.append(_container_header(len(obj), 0x80, b"\xde", b"\xdf"))
        for k, v in obj.items():
            _emit(k, out, depth + 1)
            _emit(v, out, depth + 1)
    elif isinstance(obj, (list, tuple)):
        out.append(_container_header(len(obj), 0x90, b"\xdc", b"\xdd"))
        for v in obj:
            _emit(v, out, depth + 1)
    elif isinstance(obj, np.ndarray):
        header, data = _npy_parts(obj)
        out.append(_NDARRAY_PREFIX)
        out.append(_bin_header(len(header) + len(data)))
        out.append(header)
        if len(data):
            out.append(data)
    elif type(obj).__module__ == "torch" and hasattr(obj, "detach"):  # torch.Tensor, no import
        _emit(obj.detach().cpu().numpy(), out, depth)
    else:
        out.append(msgpack.packb(obj, default=_default, use_bin_type=True))


def encode(obj: Any) -> bytes:
    """Pack `obj` into one msgpack message, byte-identical to upstream's MsgSerializer.to_bytes."""
    chunks: list[Any] = []
    try:
        _emit(obj, chunks, 0)
    except Gr00tCodecError:
        raise
    except (TypeError, ValueError, OverflowError, UnicodeError) as e:
        raise Gr00tCodecError(f"cannot encode message: {e}") from e
    return b"".join(chunks)


def _make_object_hook(writable: bool):
    def hook(obj: dict[str, Any]) -> Any:
        if NDARRAY_TAG in obj:
            npy = obj.get("as_npy")
            if not isinstance(npy, (bytes, bytearray)):
                raise Gr00tCodecError("ndarray map without bytes under 'as_npy'")
            arr = npy_to_ndarray(npy, writable=writable)
            assert isinstance(arr, np.ndarray)
            return arr
        if MODALITY_CONFIG_TAG in obj:
            if "as_json" not in obj:
                raise Gr00tCodecError("ModalityConfig map without 'as_json'")
            return ModalityConfig.from_json_dict(obj["as_json"])
        return obj

    return hook


_hook_readonly = _make_object_hook(False)
_hook_writable = _make_object_hook(True)


def decode(
    data: bytes | bytearray | memoryview,
    *,
    max_message_bytes: int | None = DEFAULT_MAX_MESSAGE_BYTES,
    writable_arrays: bool = False,
    max_objects: int = DEFAULT_MAX_OBJECTS,
) -> Any:
    """Unpack one GR00T message, refusing messages over `max_message_bytes` (None: no limit).

    Before anything is built, the message's structure is checked (at most `max_objects`
    values, bounded nesting: :mod:`arena.remote.msgpack_limits`), so what a decode allocates
    is bounded by the message's size, not amplified by it. Arrays are read-only views over
    the decoded bytes unless `writable_arrays` (one more copy).
    """
    size = memoryview(data).nbytes
    if max_message_bytes is not None and size > max_message_bytes:
        raise Gr00tMessageTooLargeError(size, max_message_bytes)
    try:
        scan(data, max_objects, DEFAULT_MAX_DEPTH)
    except WireLimitError as e:
        raise Gr00tCodecError(f"cannot decode message ({size} bytes): {e}") from e
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            object_hook=_hook_writable if writable_arrays else _hook_readonly,
        )
    except Gr00tCodecError:
        raise
    except Exception as e:  # msgpack raises many types (ExtraData, FormatError, ValueError, MemoryError, ...)
        raise Gr00tCodecError(f"cannot decode message ({size} bytes): {type(e).__name__}: {e}") from e
