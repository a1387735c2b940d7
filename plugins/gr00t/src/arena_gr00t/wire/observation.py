"""Plain-data helpers for GR00T observations and actions (no arena types here).

GR00T servers accept two observation layouts:

- nested (served by `Gr00tPolicy`)::

      {"video": {K: uint8 (B, T, H, W, 3)},
       "state": {K: float32 (B, T, D)},
       "language": {K: [[str], [str], ...]}}      # B lists of exactly one string

  and answer actions `{K: float32 (B, HORIZON, D)}`;

- flat (served with `--use-sim-policy-wrapper`): `"video.K"`, `"state.K"`, the language key
  unprefixed holding a list of B strings; actions come back as `"action.K"`.

Batch rule used by `batch_size`, `slice_batch` and `concat_batches`: every array (axis 0) and
every list/tuple (its items) is indexed by the batch; any other leaf (str, number, None) is
shared by all rows. Mappings are walked recursively, so both layouts work unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from arena.remote.fanout import split_ranges

__all__ = [
    "NESTED_GROUPS",
    "is_flat",
    "nested_to_flat",
    "flat_to_nested",
    "action_to_flat",
    "action_to_nested",
    "batch_size",
    "split_ranges",
    "slice_batch",
    "concat_batches",
]

NESTED_GROUPS = ("video", "state", "action")
"""Groups whose keys get a `group.` prefix in the flat layout (language keys get none)."""


def is_flat(observation: Mapping[str, Any]) -> bool:
    """True for the flat layout: no top-level `video`/`state`/`language` group maps."""
    return not any(isinstance(observation.get(g), Mapping) for g in ("video", "state", "language"))


def nested_to_flat(observation: Mapping[str, Any]) -> dict[str, Any]:
    """Nested layout -> flat layout; language `[[s], ...]` becomes `[s, ...]`."""
    out: dict[str, Any] = {}
    for group, members in observation.items():
        if not isinstance(members, Mapping) or group not in (*NESTED_GROUPS, "language"):
            raise ValueError(
                f"nested observation has unexpected top-level entry {group!r}; expected maps "
                f"under 'video', 'state', 'language'"
            )
        for key, value in members.items():
            flat_key = key if group == "language" else f"{group}.{key}"
            if flat_key in out:
                raise ValueError(f"key {flat_key!r} occurs twice after flattening")
            out[flat_key] = _unwrap_language(key, value) if group == "language" else value
    return out


def _unwrap_language(key: str, value: Any) -> list[str]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"language[{key!r}] must be a list of B one-string lists, got {type(value).__name__}")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, str) or not isinstance(item, Sequence) or len(item) != 1 or not isinstance(item[0], str):
            raise ValueError(f"language[{key!r}][{i}] must be a list holding exactly one string, got {item!r}")
        out.append(item[0])
    return out


def flat_to_nested(observation: Mapping[str, Any]) -> dict[str, Any]:
    """Flat layout -> nested layout.

    `video.K` / `state.K` / `action.K` go to their group; any other key must hold a list of
    strings and becomes a language entry `[[s], ...]`.
    """
    out: dict[str, dict[str, Any]] = {}
    for flat_key, value in observation.items():
        group, sep, key = flat_key.partition(".")
        if sep and group in NESTED_GROUPS and key:
            out.setdefault(group, {})[key] = value
            continue
        if (
            isinstance(value, (str, bytes))
            or not isinstance(value, Sequence)
            or not all(isinstance(s, str) for s in value)
        ):
            raise ValueError(
                f"flat observation key {flat_key!r} is neither 'video.*'/'state.*' nor a language "
                f"entry (a list of B strings); got {type(value).__name__}"
            )
        out.setdefault("language", {})[flat_key] = [[s] for s in value]
    return out


def action_to_flat(action: Mapping[str, Any]) -> dict[str, Any]:
    """`{K: a}` -> `{"action.K": a}` (keys already prefixed are kept)."""
    return {k if k.startswith("action.") else f"action.{k}": v for k, v in action.items()}


def action_to_nested(action: Mapping[str, Any]) -> dict[str, Any]:
    """`{"action.K": a}` -> `{K: a}` (unprefixed keys are kept as they are)."""
    return {k[len("action.") :] if k.startswith("action.") else k: v for k, v in action.items()}


def _leaves(obj: Any, path: str = ""):
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from _leaves(v, f"{path}.{k}" if path else str(k))
    else:
        yield path, obj


def _is_batched(leaf: Any) -> bool:
    return (isinstance(leaf, (list, tuple))) or (
        hasattr(leaf, "shape") and hasattr(leaf, "__getitem__") and not isinstance(leaf, (str, bytes))
    )


def _leading(leaf: Any, path: str) -> int:
    if isinstance(leaf, (list, tuple)):
        return len(leaf)
    shape = tuple(leaf.shape)
    if not shape:
        raise ValueError(f"{path or 'value'}: 0-d array has no batch dimension")
    return int(shape[0])


def batch_size(obj: Any) -> int:
    """The batch size B shared by every array / list leaf; error if they disagree or none exist."""
    sizes: dict[int, str] = {}
    for path, leaf in _leaves(obj):
        if _is_batched(leaf):
            sizes.setdefault(_leading(leaf, path), path)
    if not sizes:
        raise ValueError("cannot infer a batch size: no array or list in the observation")
    if len(sizes) > 1:
        detail = ", ".join(f"{p!r} has {n}" for n, p in sizes.items())
        raise ValueError(f"inconsistent batch sizes in observation: {detail}")
    return next(iter(sizes))


def slice_batch(obj: Any, start: int, stop: int) -> Any:
    """Rows `[start, stop)` of every batched leaf (array views, list slices); shared leaves kept."""
    if isinstance(obj, Mapping):
        return {k: slice_batch(v, start, stop) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return list(obj[start:stop])
    if _is_batched(obj):
        return obj[start:stop]
    return obj


def concat_batches(parts: Sequence[Any], sizes: Sequence[int] | None = None, *, strict: bool = True) -> Any:
    """Inverse of `slice_batch`: concatenate the parts' batched leaves along axis 0 / in order.

    `sizes` (rows per part) lets the check catch a server that answered the wrong number of
    rows. `strict=False` is for free-form data such as `info`: leaves that are not batched
    consistently (or keys missing from some parts) are taken from the first part that has them.
    """
    if not parts:
        raise ValueError("concat_batches needs at least one part")
    if sizes is not None and len(sizes) != len(parts):
        raise ValueError(f"{len(parts)} parts but {len(sizes)} sizes")
    return _concat(list(parts), sizes, strict, "")


def _concat(parts: list[Any], sizes: Sequence[int] | None, strict: bool, path: str) -> Any:
    first = parts[0]
    where = path or "value"
    if all(isinstance(p, Mapping) for p in parts):
        keys: list[Any] = list(first.keys())
        for p in parts[1:]:
            if strict and set(p.keys()) != set(keys):
                raise ValueError(f"{where}: parts have different keys: {sorted(keys)} vs {sorted(p.keys())}")
            keys.extend(k for k in p.keys() if k not in keys)
        out = {}
        for k in keys:
            present = [p[k] for p in parts if k in p]
            sub = f"{path}.{k}" if path else str(k)
            if len(present) != len(parts):
                out[k] = present[0]
            else:
                out[k] = _concat(present, sizes, strict, sub)
        return out
    if all(isinstance(p, (list, tuple)) for p in parts):
        if _sizes_match([len(p) for p in parts], sizes, strict, where):
            return [x for p in parts for x in p]
        return first
    if all(isinstance(p, np.ndarray) for p in parts):
        if all(p.ndim > 0 for p in parts) and _sizes_match([p.shape[0] for p in parts], sizes, strict, where):
            try:
                return np.concatenate(parts, axis=0)
            except ValueError as e:
                if strict:
                    raise ValueError(f"{where}: cannot concatenate parts: {e}") from e
                return first
        if strict:
            raise ValueError(f"{where}: 0-d arrays cannot be concatenated along the batch")
        return first
    if strict:
        for p in parts[1:]:
            if type(p) is not type(first) or _is_batched(p) or p != first:
                raise ValueError(f"{where}: parts disagree on a shared value: {first!r} vs {p!r}")
    return first


def _sizes_match(got: list[int], sizes: Sequence[int] | None, strict: bool, where: str) -> bool:
    if sizes is None or list(got) == list(sizes):
        return True
    if strict:
        raise ValueError(f"{where}: expected {list(sizes)} rows per part, got {got}")
    return False
