"""The bytes of vla-eval's protocol (vla-eval 0.8.0, protocol_version 1).

A message is one binary WebSocket frame holding a msgpack map ``{"type", "payload", "seq",
"timestamp"}``; ``type`` is ``hello``, ``observation``, ``action``, ``episode_start``,
``episode_end`` or ``error``. Arrays travel as ``{"__ndarray__": true, "data": bin, "dtype":
numpy dtype str, "shape": [...]}`` (kinds b/i/u/f only); uint8 HxWx{1,3,4} images as
``{"__image__": true, "format": "png"|"jpeg"|"raw", "data": bin, "shape": [H, W, C]}`` (raw
ones add ``dtype``). The image format is the sender's choice: png is lossless and about
half the bytes, raw costs no encoding, jpeg is lossy.

Decoding is bounded: the size is capped before anything is read, the structure is scanned
before msgpack builds objects (:mod:`arena.remote.msgpack_limits`), array bytes must match
dtype and shape, and an image's declared and decoded dimensions must agree and stay under
``max_pixels`` (checked from the header, before its pixels are decompressed).
"""

from __future__ import annotations

import io
import math
import time
from typing import Any

import msgpack
import numpy as np
from PIL import Image

from arena.remote.msgpack_limits import DEFAULT_MAX_DEPTH, DEFAULT_MAX_OBJECTS, WireLimitError, scan
from arena_vlaeval.wire.errors import VlaevalCodecError

__all__ = [
    "IMAGE_FORMATS",
    "MESSAGE_TYPES",
    "PROTOCOL_VERSION",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "encode",
    "decode",
]

PROTOCOL_VERSION = 1
MESSAGE_TYPES = ("hello", "observation", "action", "episode_start", "episode_end", "error")
IMAGE_FORMATS = ("png", "raw", "jpeg")
DEFAULT_MAX_MESSAGE_BYTES = 64 << 20
DEFAULT_MAX_PIXELS = 4096 * 4096


def _encoder(image_format: str) -> Any:
    def default(obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            if obj.dtype.kind not in "biuf":
                raise VlaevalCodecError(f"array of dtype {obj.dtype} cannot be sent (only bool, int, uint, float)")
            if obj.ndim == 3 and obj.dtype == np.uint8 and obj.shape[2] in (1, 3, 4):
                return _encode_image(obj, image_format)
            arr = np.ascontiguousarray(obj)
            return {"__ndarray__": True, "data": arr.tobytes(), "dtype": arr.dtype.str, "shape": list(arr.shape)}
        if isinstance(obj, np.generic):
            return obj.item()
        raise VlaevalCodecError(f"cannot send a {type(obj).__name__}")

    return default


def _encode_image(img: np.ndarray, image_format: str) -> dict[str, Any]:
    if image_format == "raw":
        arr = np.ascontiguousarray(img)
        return {"__image__": True, "format": "raw", "data": arr.tobytes(), "dtype": "|u1", "shape": list(arr.shape)}
    pil = Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img)
    buf = io.BytesIO()
    if image_format == "jpeg":
        if img.shape[2] != 3:
            raise VlaevalCodecError(f"jpeg needs 3 channels, the image has {img.shape[2]}")
        pil.save(buf, format="JPEG", quality=95)
    else:
        pil.save(buf, format="PNG", compress_level=1)  # lossless; level 1: most of the size gain, least CPU
    return {"__image__": True, "format": image_format, "data": buf.getvalue(), "shape": list(img.shape)}


def encode(kind: str, payload: dict[str, Any], seq: int, image_format: str = "png") -> bytes:
    """One message; images in ``image_format`` (png, raw or jpeg)."""
    if kind not in MESSAGE_TYPES:
        raise VlaevalCodecError(f"unknown message type {kind!r} (known: {', '.join(MESSAGE_TYPES)})")
    message = {"type": kind, "payload": payload, "seq": int(seq), "timestamp": time.time()}
    try:
        return msgpack.packb(message, default=_encoder(image_format), use_bin_type=True)
    except VlaevalCodecError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise VlaevalCodecError(f"cannot encode a {kind} message: {exc}") from exc


def _shape(raw: Any, what: str) -> tuple[int, ...]:
    if not isinstance(raw, (list, tuple)) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in raw
    ):
        raise VlaevalCodecError(f"{what}: shape must be a list of sizes, got {raw!r}")
    return tuple(raw)


def _decode_array(obj: dict[str, Any]) -> np.ndarray:
    try:
        dtype = np.dtype(obj["dtype"])
    except (KeyError, TypeError, ValueError) as exc:
        raise VlaevalCodecError(f"array: bad dtype ({exc})") from None
    if dtype.kind not in "biuf" or dtype.itemsize == 0:
        raise VlaevalCodecError(f"array of dtype {dtype} refused (only bool, int, uint, float)")
    data = obj.get("data")
    if not isinstance(data, bytes):
        raise VlaevalCodecError("array: data must be bin")
    shape = _shape(obj.get("shape"), "array")
    if len(data) != math.prod(shape) * dtype.itemsize:
        raise VlaevalCodecError(f"array: {len(data)} bytes do not fit dtype {dtype} and shape {list(shape)}")
    arr = np.frombuffer(data, dtype).reshape(shape)
    arr.flags.writeable = False
    return arr


def _decode_image(obj: dict[str, Any], max_pixels: int) -> np.ndarray:
    fmt, data = obj.get("format"), obj.get("data")
    shape = _shape(obj.get("shape"), "image")
    if len(shape) != 3 or shape[2] not in (1, 3, 4):
        raise VlaevalCodecError(f"image: shape must be [H, W, 1|3|4], got {list(shape)}")
    if shape[0] * shape[1] > max_pixels:
        raise VlaevalCodecError(f"image of {shape[0]}x{shape[1]} pixels refused (limit {max_pixels})")
    if not isinstance(data, bytes):
        raise VlaevalCodecError("image: data must be bin")
    if fmt == "raw":
        return _decode_array({"data": data, "dtype": obj.get("dtype", "|u1"), "shape": list(shape)})
    if fmt not in ("png", "jpeg"):
        raise VlaevalCodecError(f"image: unknown format {fmt!r} (png, jpeg, raw)")
    try:
        pil = Image.open(io.BytesIO(data), formats=["PNG" if fmt == "png" else "JPEG"])
        if pil.size != (shape[1], shape[0]):  # the header, read before any pixel is decompressed
            raise VlaevalCodecError(
                f"image: declared {shape[0]}x{shape[1]}, the {fmt} holds {pil.size[1]}x{pil.size[0]}"
            )
        arr = np.asarray(pil)
    except VlaevalCodecError:
        raise
    except Exception as exc:  # noqa: BLE001 - PIL's many errors: all one codec error
        raise VlaevalCodecError(f"image: not a valid {fmt} ({type(exc).__name__}: {exc})") from None
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    if arr.shape != shape or arr.dtype != np.uint8:
        raise VlaevalCodecError(f"image: declared {list(shape)} uint8, decoded {list(arr.shape)} {arr.dtype}")
    return arr


def decode(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    max_objects: int = DEFAULT_MAX_OBJECTS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[str, dict[str, Any], int]:
    """One message -> ``(type, payload, seq)``; every failure is a :class:`VlaevalCodecError`."""
    if not isinstance(data, (bytes, bytearray)):
        raise VlaevalCodecError(f"expected a binary frame, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise VlaevalCodecError(f"message of {len(data)} bytes exceeds the limit of {max_bytes}")

    def hook(obj: dict[str, Any]) -> Any:
        if "__image__" in obj:
            return _decode_image(obj, max_pixels)
        if "__ndarray__" in obj:
            return _decode_array(obj)
        return obj

    try:
        scan(data, max_objects, DEFAULT_MAX_DEPTH)
        message = msgpack.unpackb(data, object_hook=hook, raw=False, strict_map_key=True)
    except VlaevalCodecError:
        raise
    except WireLimitError as exc:
        raise VlaevalCodecError(f"invalid message ({len(data)} bytes): {exc}") from None
    except Exception as exc:  # noqa: BLE001 - msgpack's many errors: all one codec error
        raise VlaevalCodecError(f"invalid message ({len(data)} bytes): {type(exc).__name__}: {exc}") from None
    if not isinstance(message, dict) or not {"type", "payload", "seq"} <= set(message):
        keys = sorted(map(str, message)) if isinstance(message, dict) else type(message).__name__
        raise VlaevalCodecError(f"a message is a map with type, payload, seq, timestamp; got {keys}")
    kind, payload, seq = message["type"], message["payload"], message["seq"]
    if kind not in MESSAGE_TYPES:
        raise VlaevalCodecError(f"unknown message type {kind!r}")
    if not isinstance(payload, dict) or not isinstance(seq, int) or isinstance(seq, bool):
        raise VlaevalCodecError("a message's payload must be a map and its seq an integer")
    return kind, payload, seq
