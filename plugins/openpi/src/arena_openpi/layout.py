"""The served key layout: which openpi keys ``arena-openpi serve`` reads, derived from an env spec.

openpi's protocol has no schema exchange, so the reference server states its layout in the
metadata frame (under ``"arena"``) and the client checks its mapping against it at preflight.
Keys are derived from the env spec by name:

- ``observation/image``: the env's first camera; every other camera ``observation/<camera>_image``
  (so a camera named ``wrist`` becomes LIBERO's ``observation/wrist_image``); uint8 (H, W, 3) at
  the env's camera size. Only cameras the served policy reads are listed (``--image-keys policy``,
  the default), or every camera (``--image-keys env``);
- ``observation/state``: every env state group concatenated in the env spec's order, float32 (D,);
- ``prompt``: the task instruction (listed when the served policy reads instructions);
- reply ``actions``: float32 (H, A), columns in the env's action-group order.

A stock openpi server sends no such entry; the client then relies on its mapping and a probe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from arena.contract import EnvSpec

__all__ = [
    "ACTIONS_KEY",
    "IMAGE_KEY",
    "LAYOUT_VERSION",
    "METADATA_KEY",
    "PROMPT_KEY",
    "STATE_KEY",
    "LayoutEntry",
    "ServedLayout",
    "build_layout",
    "image_key",
]

IMAGE_KEY = "observation/image"
STATE_KEY = "observation/state"
PROMPT_KEY = "prompt"
ACTIONS_KEY = "actions"
METADATA_KEY = "arena"
LAYOUT_VERSION = 1
KINDS = ("image", "state", "prompt")


def image_key(spec: EnvSpec, camera: str) -> str:
    """The served key of env camera ``camera`` (stable whichever cameras are listed)."""
    first = next(iter(spec.cameras), None)
    return IMAGE_KEY if camera == first else f"observation/{camera}_image"


@attrs.frozen
class LayoutEntry:
    """One observation key the server reads: its kind, shape and where it goes in the env's terms."""

    key: str
    kind: str
    shape: tuple[int, ...] = attrs.field(default=(), converter=lambda v: tuple(int(x) for x in v))
    camera: str | None = None
    groups: tuple[str, ...] = attrs.field(default=(), converter=lambda v: tuple(str(x) for x in v))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "shape": list(self.shape)}
        if self.camera is not None:
            out["camera"] = self.camera
        if self.groups:
            out["groups"] = list(self.groups)
        return out


@attrs.frozen
class ServedLayout:
    """What the reference server reads and returns; travels in the metadata frame."""

    env: str
    policy: str
    embodiment: str
    action_horizon: int
    action_dim: int
    action_groups: tuple[str, ...] = attrs.field(converter=tuple)
    entries: Mapping[str, LayoutEntry] = attrs.field(factory=dict)

    def to_metadata(self) -> dict[str, Any]:
        return {
            METADATA_KEY: {
                "layout_version": LAYOUT_VERSION,
                "env": self.env,
                "policy": self.policy,
                "embodiment": self.embodiment,
                "action_horizon": self.action_horizon,
                "action_dim": self.action_dim,
                "action_groups": list(self.action_groups),
                "observation": {k: e.to_dict() for k, e in self.entries.items()},
            }
        }

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> ServedLayout | None:
        """The layout in a metadata frame; None when the server states none (a stock server).

        Raises ValueError naming the field when the entry is present but malformed.
        """
        raw = metadata.get(METADATA_KEY)
        if raw is None:
            return None
        try:
            if raw["layout_version"] != LAYOUT_VERSION:
                raise ValueError(f"layout_version {raw['layout_version']!r} (this client reads {LAYOUT_VERSION})")
            entries = {}
            for key, e in raw["observation"].items():
                if e["kind"] not in KINDS:
                    raise ValueError(f"observation[{key!r}].kind {e['kind']!r} (expected one of {KINDS})")
                entries[key] = LayoutEntry(key, e["kind"], e.get("shape", ()), e.get("camera"), e.get("groups", ()))
            return cls(
                env=str(raw["env"]),
                policy=str(raw["policy"]),
                embodiment=str(raw["embodiment"]),
                action_horizon=int(raw["action_horizon"]),
                action_dim=int(raw["action_dim"]),
                action_groups=tuple(str(g) for g in raw["action_groups"]),
                entries=entries,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed {METADATA_KEY!r} metadata entry: missing or wrong field {exc}") from None


def build_layout(
    spec: EnvSpec, policy: str, cameras: Sequence[str], uses_instruction: bool, action_horizon: int
) -> ServedLayout:
    """The layout for serving ``policy`` on ``spec``, listing ``cameras`` (see the module doc)."""
    entries: dict[str, LayoutEntry] = {}
    for camera in spec.cameras:
        if camera in cameras:
            key = image_key(spec, camera)
            entries[key] = LayoutEntry(key, "image", (*spec.cameras[camera], 3), camera=camera)
    groups = tuple(spec.state_groups)
    size = sum(spec.state_size(g) for g in groups)
    entries[STATE_KEY] = LayoutEntry(STATE_KEY, "state", (size,), groups=groups)
    if uses_instruction:
        entries[PROMPT_KEY] = LayoutEntry(PROMPT_KEY, "prompt")
    return ServedLayout(
        env=spec.name,
        policy=policy,
        embodiment=spec.embodiment,
        action_horizon=action_horizon,
        action_dim=spec.action_dim,
        action_groups=tuple(g.name for g in spec.action_groups),
        entries=entries,
    )
