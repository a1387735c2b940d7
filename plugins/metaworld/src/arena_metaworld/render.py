"""Offscreen camera rendering of one Meta-World scene with ``mujoco.Renderer``.

The renderer (and its GL context) is created lazily, on the first image, in
the process that renders: an EGL context must not cross a fork, and most runs
(state-only policies) never render at all.
"""

from __future__ import annotations

from collections.abc import Mapping

import mujoco
import numpy as np

__all__ = ["CameraRenderer", "UPSIDE_DOWN_Z"]

#: a camera whose image "up" axis points this far below the horizon is mounted upside down
UPSIDE_DOWN_Z = -0.1


class CameraRenderer:
    """Renders named cameras of ``model``/``data`` into caller-provided uint8 (H, W, 3) arrays.

    Meta-World's ``corner*`` cameras are declared rolled by 180 degrees (their
    image-up axis points down in the world), so their frames show the table
    upside down. With ``upright`` such frames are rotated by 180 degrees (a flip
    of both axes: flipping rows only would mirror the scene). Which cameras need
    it is decided once from the camera frames (``data.cam_xmat``), not from a
    hard-coded list.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        data: mujoco.MjData,
        cameras: tuple[str, ...],
        height: int,
        width: int,
        *,
        shadows: bool = False,
        reflections: bool = False,
        upright: bool = True,
        antialias: bool = True,
    ) -> None:
        self.model = model
        self.data = data
        self.height = height
        self.width = width
        self.shadows = shadows
        self.reflections = reflections
        self.antialias = antialias
        self._ids: dict[str, int] = {}
        self._rotate: dict[str, bool] = {}
        for cam in cameras:
            cam_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, cam)
            if cam_id < 0:
                raise ValueError(f"camera {cam!r} does not exist in this Meta-World scene")
            self._ids[cam] = cam_id
            up_z = float(data.cam_xmat[cam_id].reshape(3, 3)[2, 1])
            self._rotate[cam] = upright and up_z < UPSIDE_DOWN_Z
        self._renderer: mujoco.Renderer | None = None
        self._scratch = np.empty((height, width, 3), np.uint8)

    def rotated(self, camera: str) -> bool:
        """Whether ``camera``'s frames are rotated by 180 degrees to be upright."""
        return self._rotate[camera]

    def _make_renderer(self) -> mujoco.Renderer:
        vis = self.model.vis.global_
        # The offscreen buffer is sized from the model (640x480 in Meta-World); grow it for larger images.
        vis.offwidth = max(int(vis.offwidth), self.width)
        vis.offheight = max(int(vis.offheight), self.height)
        if not self.antialias:  # the model's multisample count (4 in Meta-World) is what costs most in software GL
            self.model.vis.quality.offsamples = 0
        renderer = mujoco.Renderer(self.model, self.height, self.width)
        renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = self.shadows
        renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = self.reflections
        return renderer

    def render_into(self, out: Mapping[str, np.ndarray]) -> int:
        """Render every camera of ``out`` into its (H, W, 3) uint8 array; returns the image count."""
        if self._renderer is None:
            self._renderer = self._make_renderer()
        renderer = self._renderer
        for cam, dst in out.items():
            renderer.update_scene(self.data, camera=self._ids[cam])
            if self._rotate[cam]:
                renderer.render(out=self._scratch)
                np.copyto(dst, self._scratch[::-1, ::-1])
            else:
                renderer.render(out=dst)
        return len(out)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
