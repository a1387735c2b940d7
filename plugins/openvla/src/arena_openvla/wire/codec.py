"""The bytes of OpenVLA's ``POST /act``: json-numpy bodies, the double-encoded form, the ``"error"`` reply.

Facts (openvla/openvla ``vla-scripts/deploy.py``): the body is a JSON object
``{"image": HxWx3 uint8, "instruction": str, "unnorm_key": str (optional)}`` whose arrays
use json-numpy's encoding ``{"__numpy__": base64, "dtype": "|u1", "shape": [H, W, 3]}``;
``{"encoded": "<that object as a JSON string>"}`` is the form for clients without
json-numpy, and its reply is a JSON string holding the json-numpy encoding. The reply is the
action, a float array (7,) for LIBERO/Bridge checkpoints. A server-side failure is answered
with HTTP 200 and the JSON string ``"error"``. Extra keys (``proprio``) are ignored by the
stock server; arena's reference server reads them.

Decoding is bounded: the caller caps the body's size before calling here (what json and
base64 allocate is proportional to it), nesting too deep for json's parser is refused,
and only numeric or boolean arrays are accepted (no object or structured dtypes), checked
before the data is decoded; an array's bytes must match its dtype and shape exactly.

The encoding is json-numpy's format (its interop is tested against ``json_numpy``
itself); it is written here with orjson and pybase64 because json-numpy's pure-``base64``
and ``json`` path costs about 0.6 ms per 224x224 image each way, the largest CPU cost of a
request (bench/openvla_fanout.py). Imports nothing from arena but its dependency-free
error module.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson
import pybase64
from numpy.lib.format import descr_to_dtype, dtype_to_descr

from arena.remote.errors import RemoteCodecError

__all__ = ["ERROR_REPLY", "encode_body", "decode_body", "encode_reply", "decode_reply", "is_error"]

#: what a stock server answers (HTTP 200) when the model raised
ERROR_REPLY = "error"


def _array(o: Any) -> dict[str, Any]:
    """json-numpy's form of an array or numpy scalar: ``{"__numpy__": base64, "dtype": descr, "shape": [...]}``."""
    if not isinstance(o, (np.ndarray, np.generic)):
        raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")
    arr = np.ascontiguousarray(o)
    return {
        "__numpy__": pybase64.b64encode(arr.data).decode("ascii"),
        "dtype": dtype_to_descr(arr.dtype),
        "shape": o.shape,
    }


def _dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj, default=_array)
    except TypeError as exc:  # orjson.JSONEncodeError: an unsupported value
        raise RemoteCodecError(f"cannot encode the body: {exc}") from None


def encode_body(body: dict[str, Any], double_encoded: bool = False) -> bytes:
    """The request body; ``double_encoded``: ``{"encoded": json string}`` as clients without json-numpy send."""
    data = _dumps(body)
    return orjson.dumps({"encoded": data.decode()}) if double_encoded else data


def _hook(d: dict[str, Any]) -> Any:
    """json-numpy's array form -> the array (read-only, over the decoded bytes); other objects as they are."""
    if "__numpy__" not in d:
        return d
    dtype = descr_to_dtype(d["dtype"])
    if dtype.kind not in "biuf" or dtype.fields is not None:
        raise RemoteCodecError(f"array of dtype {dtype} refused (only bool, int, uint and float arrays)")
    shape = d["shape"]
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise RemoteCodecError(f"array shape must be a list of sizes, got {shape!r}")
    data = pybase64.b64decode(d["__numpy__"], validate=True)
    if len(data) != dtype.itemsize * int(np.prod(shape, dtype=np.int64)):
        raise RemoteCodecError(f"array data of {len(data)} bytes does not fit dtype {dtype} and shape {shape}")
    arr = np.frombuffer(data, dtype)
    return arr.reshape(shape) if shape else arr[0]


def _loads(text: str) -> Any:
    try:
        return json.loads(text, object_hook=_hook)
    except RemoteCodecError:
        raise
    except RecursionError:  # json's C parser guards its own depth
        raise RemoteCodecError("JSON nested too deeply") from None
    except (ValueError, TypeError, KeyError) as exc:  # bad JSON, base64, dtype or shape
        raise RemoteCodecError(f"not a json-numpy body: {type(exc).__name__}: {exc}") from None


def decode_body(data: bytes) -> tuple[dict[str, Any], bool]:
    """A request body -> (the object, whether it came double-encoded)."""
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise RemoteCodecError("body is not UTF-8 text") from None
    obj = _loads(text)
    double = isinstance(obj, dict) and set(obj) == {"encoded"}
    if double:
        if not isinstance(obj["encoded"], str):
            raise RemoteCodecError('"encoded" must hold the JSON text of the body')
        obj = _loads(obj["encoded"])
    if not isinstance(obj, dict):
        raise RemoteCodecError(f"body must be a JSON object, got {type(obj).__name__}")
    return obj, double


def encode_reply(action: np.ndarray, double_encoded: bool = False) -> bytes:
    """The reply to an accepted request (the json-numpy array, or that text as a JSON string)."""
    data = _dumps(np.asarray(action))
    return orjson.dumps(data.decode()) if double_encoded else data


def is_error(data: bytes) -> bool:
    """Whether a 200 reply is the stock server's failure marker ``"error"``."""
    return data.strip() == b'"error"'


def decode_reply(data: bytes, double_encoded: bool = False) -> np.ndarray:
    """A 200 reply -> the action array (callers check :func:`is_error` first)."""
    try:
        obj = _loads(data.decode())
        if double_encoded and isinstance(obj, str):
            obj = _loads(obj)
    except UnicodeDecodeError:
        raise RemoteCodecError("reply is not UTF-8 text") from None
    if not isinstance(obj, np.ndarray):
        raise RemoteCodecError(f"reply must be a json-numpy array, got {type(obj).__name__}")
    return obj
