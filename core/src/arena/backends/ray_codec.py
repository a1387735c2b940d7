"""The bytes of a shard call and of its reply: one msgpack message each way.

Ray serialises every argument and every return value of an actor call
separately (pickle, out-of-band buffers, inline or in the object store);
for the few small arrays of a chunk step that machinery costs more than
the step of a cheap simulator. One msgpack message each way, arrays as
raw little-endian bytes, halves the cost of a call (measured in
``bench/scale.py``). Both ends are arena code inside one Ray cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import msgpack
import numpy as np

from arena.env import EpisodeSpec, StepResult

__all__ = ["ShardReply", "pack_call", "unpack_call", "pack_reply", "unpack_reply"]


@attrs.define
class ShardReply:
    """What one shard call returns, aligned with the local slot ids it was given.

    ``images[camera]`` holds the rows listed in ``image_rows`` (positions in
    the call), rendered after the call; ``instructions`` is set by resets.
    ``renders``: the shard's render count so far.
    """

    success: np.ndarray
    error: list[str | None]
    steps: np.ndarray | None
    lost: np.ndarray | None
    state: dict[str, np.ndarray]
    image_rows: np.ndarray
    images: dict[str, np.ndarray]
    instructions: list[str] | None
    renders: int


def _bools(values: Any) -> bytes:
    return np.ascontiguousarray(values, np.bool_).tobytes()


def pack_call(
    kind: str,
    ids: Sequence[int],
    render: np.ndarray,
    actions: np.ndarray | None = None,
    counts: np.ndarray | None = None,
    episodes: Sequence[EpisodeSpec] | None = None,
) -> bytes:
    """A ``reset`` / ``step`` / ``observe`` call on local slots ``ids``."""
    msg: dict[str, Any] = {"kind": kind, "ids": [int(i) for i in ids], "render": _bools(render)}
    if actions is not None:
        acts = np.ascontiguousarray(actions, "<f4")
        msg["actions"] = acts.tobytes()
        msg["shape"] = list(acts.shape)
        msg["counts"] = [int(c) for c in np.asarray(counts)]
    if episodes is not None:
        msg["episodes"] = [[e.task, int(e.index), int(e.seed)] for e in episodes]
    return msgpack.packb(msg, use_bin_type=True)


def unpack_call(data: bytes) -> dict[str, Any]:
    """The call as the shard runs it: numpy arrays and EpisodeSpecs."""
    msg = msgpack.unpackb(data, raw=False)
    out: dict[str, Any] = {"kind": msg["kind"], "ids": msg["ids"], "render": np.frombuffer(msg["render"], np.bool_)}
    if "actions" in msg:
        out["actions"] = np.frombuffer(msg["actions"], "<f4").reshape(msg["shape"])
        out["counts"] = np.asarray(msg["counts"], np.int64)
    if "episodes" in msg:
        out["episodes"] = [EpisodeSpec(t, i, s) for t, i, s in msg["episodes"]]
    return out


def pack_reply(res: StepResult, ids: Sequence[int], render: np.ndarray, instructions: bool, renders: int) -> bytes:
    """The stepped rows' outcome and state; images only for rendered rows that did not end."""
    idx = np.asarray(ids, np.int64)
    obs = res.observation
    ended = np.asarray(res.success, bool) | np.array([e is not None for e in res.error], bool)
    rows = np.flatnonzero(np.asarray(render, bool) & ~ended)
    msg: dict[str, Any] = {
        "success": _bools(res.success),
        "error": list(res.error),
        "steps": None if res.steps is None else [int(s) for s in res.steps],
        "lost": None if res.lost is None else _bools(res.lost),
        "state": {k: np.ascontiguousarray(np.asarray(v)[idx], "<f4").tobytes() for k, v in obs.state.items()},
        "image_rows": [int(r) for r in rows],
        "images": {k: np.ascontiguousarray(np.asarray(v)[idx[rows]], np.uint8).tobytes() for k, v in obs.images.items()}
        if len(rows)
        else {},
        "instructions": [obs.instruction[i] for i in idx.tolist()] if instructions else None,
        "renders": int(renders),
    }
    return msgpack.packb(msg, use_bin_type=True)


def unpack_reply(data: bytes, state_dims: Mapping[str, int], cameras: Mapping[str, tuple[int, int]]) -> ShardReply:
    """A reply, shaped by the env spec's state widths and camera sizes."""
    msg = msgpack.unpackb(data, raw=False)
    n = len(msg["error"])
    rows = np.asarray(msg["image_rows"], np.int64)
    images = {}
    for cam, raw in msg["images"].items():
        h, w = cameras[cam]
        images[cam] = np.frombuffer(raw, np.uint8).reshape(len(rows), h, w, 3)
    return ShardReply(
        success=np.frombuffer(msg["success"], np.bool_),
        error=msg["error"],
        steps=None if msg["steps"] is None else np.asarray(msg["steps"], np.int64),
        lost=None if msg["lost"] is None else np.frombuffer(msg["lost"], np.bool_),
        state={k: np.frombuffer(v, "<f4").reshape(n, state_dims[k]) for k, v in msg["state"].items()},
        image_rows=rows,
        images=images,
        instructions=msg["instructions"],
        renders=msg["renders"],
    )
