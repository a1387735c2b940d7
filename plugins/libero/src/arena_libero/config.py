"""The ``libero`` env family's options (they become ``arena eval`` flags)."""

from __future__ import annotations

import attrs

from arena.validators import at_least, names_among, one_of

__all__ = ["LiberoConfig", "CAMERAS"]

#: arena camera name -> robosuite camera name
CAMERAS: dict[str, str] = {"agentview": "agentview", "eye_in_hand": "robot0_eye_in_hand"}


@attrs.define
class LiberoConfig:
    cameras: tuple[str, ...] = attrs.field(
        default=tuple(CAMERAS),
        converter=lambda v: (v,) if isinstance(v, str) else tuple(v),
        validator=names_among(tuple(CAMERAS), kind="camera"),
        metadata={"help": f"cameras to provide, by name ({', '.join(CAMERAS)}); rendered only when read"},
    )
    image_size: int = attrs.field(
        default=256,
        validator=at_least(8),
        metadata={"help": "height and width of every camera image in pixels (LIBERO's datasets: 256; models resize)"},
    )
    settle_steps: int = attrs.field(
        default=10,
        validator=at_least(0),
        metadata={
            "help": "no-op steps after each reset while objects settle, as the published evaluations run them; "
            "not counted against the policy's step limit"
        },
    )
    instruction: str = attrs.field(
        default="filename",
        validator=one_of("filename", "bddl"),
        metadata={
            "help": "where task instructions come from: filename (derived from the BDDL file's name, what the "
            "published openpi/OpenVLA clients send and LIBERO's datasets carry) or bddl (the file's :language "
            "field; 29 of 130 tasks differ)"
        },
    )
    privileged: bool = attrs.field(
        default=False,
        metadata={
            "help": "add the state groups object_pos, object_quat and target_pos (world poses a scripted expert "
            "reads); off by default so that no learned policy receives them"
        },
    )
    worker_timeout_s: float = attrs.field(
        default=300.0,
        validator=at_least(1.0),
        metadata={
            "identity": False,
            "help": "seconds a worker process may take to answer (a scene build takes seconds) before it is replaced",
        },
    )
