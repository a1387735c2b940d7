"""The observation rows of all slots: one float32 state array and one uint8 array per camera.

In process they are plain numpy arrays; for worker processes they live in
one ``multiprocessing.shared_memory`` block that every worker maps, so a
worker writes its slot's row and the parent reads it with no copy and no
pickling. The parent's :class:`~arena.contract.Observation` views these
arrays directly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from multiprocessing import shared_memory

import attrs
import numpy as np

log = logging.getLogger(__name__)

__all__ = ["SlotLayout", "SlotBuffers"]

_ALIGN = 64


@attrs.frozen
class SlotLayout:
    """Sizes of the buffers (picklable: workers rebuild their views from it)."""

    num_slots: int
    state_dim: int
    cameras: Mapping[str, tuple[int, int]] = attrs.field(converter=lambda c: dict(c))
    #: action rows per slot carried in shared memory (longer chunks travel in the message)
    action_dim: int = 0
    max_chunk: int = 0

    def offsets(self) -> tuple[dict[str, tuple[int, tuple[int, ...], str]], int]:
        """name -> (byte offset, shape, dtype), and the total size."""
        out: dict[str, tuple[int, tuple[int, ...], str]] = {}
        pos = 0
        parts: list[tuple[str, tuple[int, ...], str, int]] = [("state", (self.num_slots, self.state_dim), "float32", 4)]
        parts += [(f"image:{cam}", (self.num_slots, h, w, 3), "uint8", 1) for cam, (h, w) in self.cameras.items()]
        parts.append(("actions", (self.num_slots, self.max_chunk, self.action_dim), "float32", 4))
        for name, shape, dtype, itemsize in parts:
            out[name] = (pos, shape, dtype)
            pos += -(-int(np.prod(shape)) * itemsize // _ALIGN) * _ALIGN
        return out, max(pos, _ALIGN)


class SlotBuffers:
    """``state`` (N, D) float32, ``images[camera]`` (N, H, W, 3) uint8 and ``actions`` (N, M, A), local or shared."""

    def __init__(self, layout: SlotLayout, shared: bool = False, name: str | None = None) -> None:
        self.layout = layout
        offsets, size = layout.offsets()
        self._shm: shared_memory.SharedMemory | None = None
        self._owner = False
        if shared or name is not None:
            if name is None:
                self._shm = shared_memory.SharedMemory(create=True, size=size)
                self._owner = True
            else:
                # a worker spawned by the owner shares its resource tracker: the block is registered once
                # and unlinked by the owner's close()
                self._shm = shared_memory.SharedMemory(name=name)
            buf = self._shm.buf
            views = {
                key: np.ndarray(shape, dtype=dtype, buffer=buf, offset=off)
                for key, (off, shape, dtype) in offsets.items()
            }
        else:
            views = {key: np.zeros(shape, dtype=dtype) for key, (_, shape, dtype) in offsets.items()}
        self.state: np.ndarray = views["state"]
        self.images: dict[str, np.ndarray] = {cam: views[f"image:{cam}"] for cam in layout.cameras}
        self.actions: np.ndarray = views["actions"]

    @property
    def name(self) -> str | None:
        """The shared block's name (None in process)."""
        return self._shm.name if self._shm is not None else None

    def row(self, slot: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Slot ``slot``'s state row and image rows (views)."""
        return self.state[slot], {cam: img[slot] for cam, img in self.images.items()}

    def close(self) -> None:
        """Unmap (and, in the creating process, free) the shared block; views must be dropped first."""
        if self._shm is None:
            return
        shm, self._shm = self._shm, None
        self.state = np.zeros((0, self.layout.state_dim), np.float32)
        self.images = {}
        self.actions = np.zeros((0, 0, 0), np.float32)
        try:
            shm.close()
        except BufferError:  # a view is still alive somewhere; the OS frees the block at exit
            log.debug("shared block %s still has views; left to the OS", shm.name)
        if self._owner:
            shm.unlink()
