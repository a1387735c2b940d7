"""The ``metaworld`` env family's options (they become ``arena eval`` flags)."""

from __future__ import annotations

import attrs

from arena.validators import at_least, names_among

__all__ = ["MetaWorldConfig", "CAMERAS", "METAWORLD_MAX_PATH_LENGTH"]

#: cameras defined in Meta-World's shared scene (assets/objects/assets/xyz_base.xml)
CAMERAS: tuple[str, ...] = ("corner", "corner2", "corner3", "corner4", "topview", "gripperPOV", "behindGripper")

#: SawyerXYZEnv.max_path_length: Meta-World's own episode horizon
METAWORLD_MAX_PATH_LENGTH = 500


@attrs.define
class MetaWorldConfig:
    cameras: tuple[str, ...] = attrs.field(
        default=("corner",),
        converter=lambda v: (v,) if isinstance(v, str) else tuple(v),
        validator=names_among(CAMERAS, kind="camera", minimum=1),
        metadata={"help": f"cameras to provide, by name ({', '.join(CAMERAS)})"},
    )
    image_height: int = attrs.field(
        default=224, validator=at_least(8), metadata={"help": "camera image height in pixels"}
    )
    image_width: int = attrs.field(
        default=224, validator=at_least(8), metadata={"help": "camera image width in pixels"}
    )
    shadows: bool = attrs.field(
        default=False, metadata={"help": "render shadows (about 4x slower per image with CPU rendering)"}
    )
    reflections: bool = attrs.field(default=False, metadata={"help": "render floor/table reflections"})
    antialias: bool = attrs.field(
        default=False,
        metadata={
            "help": "4x multisample anti-aliasing, as Meta-World renders by default (about 2.3x the CPU per image "
            "with CPU rendering; off: aliased edges)"
        },
    )
    upright: bool = attrs.field(
        default=True,
        metadata={"help": "rotate images of upside-down mounted cameras (corner*) by 180 degrees so up is up"},
    )
    worker_timeout_s: float = attrs.field(
        default=120.0,
        validator=at_least(1.0),
        metadata={
            "identity": False,
            "help": "seconds a worker process may take to answer before it is killed and replaced",
        },
    )
