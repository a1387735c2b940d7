"""The one place where numpy and torch arrays are told apart and converted.

The canonical contract lets tensors live on any torch device or be numpy arrays
(a GPU-batched simulator hands out cuda tensors, a MuJoCo worker pool numpy
arrays); everything that needs one kind asks this module for it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, Union

import numpy as np

Array = Union[np.ndarray, "torch.Tensor"]  # noqa: F821

__all__ = ["Array", "is_torch", "to_numpy", "to_torch", "take_rows", "like", "shape_of"]


def is_torch(x: Any) -> bool:
    """True for a torch tensor.

    torch is imported lazily (it takes seconds): if nobody imported it, ``x``
    cannot be a tensor.
    """
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def to_numpy(x: Any, dtype: Any = None) -> np.ndarray:
    """A numpy view or copy of ``x``; torch tensors are moved to the CPU first."""
    if is_torch(x):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if dtype is not None and arr.dtype != dtype:
        arr = arr.astype(dtype)
    return arr


def to_torch(x: Any, device: Any = None, dtype: Any = None) -> torch.Tensor:  # noqa: F821
    """A torch tensor on ``device``; numpy arrays are shared, not copied, when possible."""
    import torch

    t = x if is_torch(x) else torch.from_numpy(np.ascontiguousarray(x))
    if device is not None or dtype is not None:
        t = t.to(device=device, dtype=dtype)
    return t


def take_rows(x: Array, rows: Sequence[int] | np.ndarray) -> Array:
    """Rows ``rows`` of ``x`` (batch dim first), keeping the array kind and device."""
    idx = np.asarray(rows, dtype=np.int64)
    if is_torch(x):
        import torch

        return x[torch.as_tensor(idx, device=x.device)]
    return x[idx]


def like(x: Array, data: Any) -> Array:
    """``data`` as the same kind (and device) of array as ``x``."""
    if is_torch(x):
        return to_torch(data, device=x.device)
    return to_numpy(data)


def shape_of(x: Array) -> tuple[int, ...]:
    return tuple(int(d) for d in x.shape)
