"""arena.arrays: numpy and (CPU) torch tensors told apart and converted in one place."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from arena.arrays import is_torch, like, shape_of, take_rows, to_numpy, to_torch


def test_is_torch() -> None:
    assert is_torch(torch.zeros(2))
    assert not is_torch(np.zeros(2))
    assert not is_torch([0.0, 1.0])


def test_to_numpy_from_torch_and_numpy() -> None:
    t = torch.arange(6, dtype=torch.float64).reshape(2, 3)
    a = to_numpy(t, np.float32)
    assert isinstance(a, np.ndarray)
    assert a.dtype == np.float32
    assert a.tolist() == [[0, 1, 2], [3, 4, 5]]
    n = np.arange(3, dtype=np.int64)
    assert to_numpy(n) is n  # no copy when nothing changes
    assert to_numpy(n, np.float32).dtype == np.float32
    assert to_numpy([1, 2]).tolist() == [1, 2]


def test_to_numpy_detaches_tensors_that_require_grad() -> None:
    t = torch.ones(2, requires_grad=True) * 3
    assert to_numpy(t).tolist() == [3.0, 3.0]


def test_to_torch_shares_numpy_memory_and_converts() -> None:
    a = np.zeros(3, np.float32)
    t = to_torch(a)
    assert isinstance(t, torch.Tensor)
    a[1] = 5
    assert t[1].item() == 5.0  # shared, not copied
    t64 = to_torch(a, dtype=torch.float64)
    assert t64.dtype == torch.float64
    same = torch.ones(2)
    assert to_torch(same) is same


@pytest.mark.parametrize("make", [np.asarray, torch.as_tensor])
def test_take_rows_keeps_the_array_kind(make) -> None:
    x = make(np.arange(12).reshape(4, 3))
    rows = take_rows(x, [3, 1])
    assert type(rows) is type(x)
    assert to_numpy(rows).tolist() == [[9, 10, 11], [3, 4, 5]]
    assert to_numpy(take_rows(x, np.array([2]))).tolist() == [[6, 7, 8]]


def test_like_returns_the_kind_of_the_reference() -> None:
    t = like(torch.zeros(1), np.array([1.0, 2.0]))
    assert isinstance(t, torch.Tensor) and t.tolist() == [1.0, 2.0]
    n = like(np.zeros(1), torch.tensor([3.0]))
    assert isinstance(n, np.ndarray) and n.tolist() == [3.0]


def test_shape_of_is_a_tuple_of_ints_for_both_kinds() -> None:
    assert shape_of(np.zeros((2, 3))) == (2, 3)
    s = shape_of(torch.zeros(4, 5, 6))
    assert s == (4, 5, 6) and all(type(d) is int for d in s)
