"""Image preprocessing shared by translators: resize with padding, rotation.

Models are trained on a fixed input size; envs render at theirs. The usual
convention (openpi, GR00T) is an aspect-preserving resize followed by centred
zero padding, so nothing is stretched or cropped.
"""

from __future__ import annotations

import numpy as np

from arena.arrays import Array, is_torch, to_numpy
from arena.errors import ContractError

__all__ = ["resize_with_pad", "flip", "rotate180"]


def resize_with_pad(images: Array, height: int, width: int) -> np.ndarray:
    """uint8 (N, H, W, 3) -> uint8 (N, height, width, 3): fit inside, keep aspect, pad with zeros centred."""
    shape = tuple(images.shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise ContractError(f"resize_with_pad: expected images of shape (N, H, W, 3), got {shape}")
    n, h, w, _ = shape
    if (h, w) == (height, width):
        return to_numpy(images, np.uint8)
    import torch
    import torch.nn.functional as F

    scale = min(height / h, width / w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    t = images if is_torch(images) else torch.from_numpy(np.ascontiguousarray(images))
    t = t.permute(0, 3, 1, 2).to(torch.float32)
    t = F.interpolate(t, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=scale < 1)
    t = t.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = np.zeros((n, height, width, 3), np.uint8)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    out[:, top : top + new_h, left : left + new_w] = t
    return out


def flip(images: Array, rows: bool = True, cols: bool = True) -> np.ndarray:
    """Flip (N, H, W, 3) images upside down (``rows``) and/or left-right (``cols``); both: a 180-degree turn.

    torch's flip copies about 25x faster than numpy's negative-stride copy
    (0.14 ms vs 3.7 ms for 8 images of 224x224), and this runs on every query.
    """
    import torch

    t = images if is_torch(images) else torch.from_numpy(np.ascontiguousarray(images))
    dims = tuple(d for d, on in ((1, rows), (2, cols)) if on)
    return t.flip(dims).cpu().numpy() if dims else t.cpu().numpy()


def rotate180(images: Array) -> np.ndarray:
    """Rotate (N, H, W, 3) images by 180 degrees."""
    return flip(images, rows=True, cols=True)
