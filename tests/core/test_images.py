"""Image preprocessing shared by translators."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from arena.errors import ContractError
from arena.images import resize_with_pad, rotate180


def test_rotate180_moves_each_pixel_to_the_opposite_corner() -> None:
    img = np.zeros((2, 3, 4, 3), np.uint8)
    img[0, 0, 0] = (1, 2, 3)  # top-left of image 0
    img[1, 2, 1] = (9, 8, 7)
    out = rotate180(img)
    assert out.shape == img.shape and out.dtype == np.uint8 and out.flags.c_contiguous
    assert tuple(out[0, 2, 3]) == (1, 2, 3)  # bottom-right, channels untouched
    assert tuple(out[1, 0, 2]) == (9, 8, 7)
    assert out.sum() == img.sum()
    np.testing.assert_array_equal(rotate180(torch.from_numpy(img)), out)
    np.testing.assert_array_equal(rotate180(out), img)


def test_resize_with_pad_keeps_aspect_and_centres_with_zero_padding() -> None:
    img = np.full((1, 2, 4, 3), 200, np.uint8)  # wide: 2 rows, 4 columns
    out = resize_with_pad(img, 4, 4)
    assert out.shape == (1, 4, 4, 3)
    # scale 1: the two image rows sit in the middle, one zero row above and below
    assert (out[0, 0] == 0).all() and (out[0, 3] == 0).all()
    assert (out[0, 1:3] == 200).all()


def test_resize_with_pad_downscales_and_refuses_bad_shapes() -> None:
    img = np.full((2, 8, 8, 3), 50, np.uint8)
    out = resize_with_pad(img, 4, 2)
    assert out.shape == (2, 4, 2, 3)
    assert (out[:, 1:3] == 50).all() and (out[:, [0, 3]] == 0).all()
    with pytest.raises(ContractError, match=r"expected images of shape \(N, H, W, 3\), got \(8, 8, 3\)"):
        resize_with_pad(img[0], 4, 4)
