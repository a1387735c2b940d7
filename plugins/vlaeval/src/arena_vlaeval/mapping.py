"""vla-eval mappings: the kit's key mapping, images nested under ``images``, conventions reconciled.

A vla-eval observation is ``{"images": {NAME: HxWx3}, "task_description": str, "states" or
"state": vector}``; a mapping names which env camera is each image (in order), which state
groups form each state key, and which env action groups the reply's ``actions`` columns feed.
Beyond the kit's schema (:mod:`arena.remote.keymap`)::

    [components]              # server action_spec component -> env action group
    position = "ee_delta"     # default: same name, else in order when the sizes line up
    [convert]                 # (the kit's) env action group -> conversion of the server's values
    gripper = "flip_sign"     # arena.conventions.CONVERSIONS (flip_sign, xyzw_to_wxyz, ...)
    [state_formats]           # state key -> the format it carries, compared with the server's
    states = "eef_pos3_axisangle3_gripper2"
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.resources import files
from typing import Any

import attrs
import numpy as np

from arena.contract import EnvSpec, Observation
from arena.conventions import CONVERSIONS, mismatch
from arena.remote import mapfile
from arena.remote.keymap import KeyMapping
from arena.remote.mapfile import MappingError
from arena.remote.translate import KeyTranslator

__all__ = ["PACKAGED_MAPPINGS", "EMBODIMENT_MAPPINGS", "VlaevalMapping", "VlaevalTranslator", "packaged_mapping"]

PACKAGED_MAPPINGS = {"metaworld": "metaworld.toml", "libero": "libero.toml"}
EMBODIMENT_MAPPINGS = {"sawyer": "metaworld", "libero_panda": "libero"}


def _str_table(data: Mapping[str, Any], key: str, source: str) -> dict[str, str]:
    table = mapfile.table(data.get(key, {}), source, key)
    out = {}
    for k, v in table.items():
        if not isinstance(v, str):
            raise MappingError(f"mapping {source}: [{key}] {k} must be a string, got {v!r}")
        out[str(k)] = v
    return out


@attrs.frozen
class VlaevalMapping(KeyMapping):
    translator_prefix = "vlaeval"
    protocol = "vla-eval"
    mapping_hint = "--mapping PATH"
    extra_fields = ("components", "state_formats")

    components: Mapping[str, str] = attrs.field(factory=dict)
    state_formats: Mapping[str, str] = attrs.field(factory=dict)

    @classmethod
    def parse_extra(cls, data: Mapping[str, Any], source: str) -> dict[str, Any]:
        return {
            "components": _str_table(data, "components", source),
            "state_formats": _str_table(data, "state_formats", source),
        }


def packaged_mapping(name: str) -> Any:
    return files("arena_vlaeval").joinpath("mappings", PACKAGED_MAPPINGS[name])


class VlaevalTranslator(KeyTranslator):
    """The kit's translator with images under ``images`` and the server's declared conventions checked."""

    label = "vlaeval"

    def __init__(self, mapping: VlaevalMapping, spec: EnvSpec) -> None:
        super().__init__(mapping, spec)
        self.image_keys = [e.key for e in self.images]

    def _nest(self, flat: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in flat.items() if k not in self.image_keys}
        out["images"] = {k: flat[k] for k in self.image_keys if k in flat}
        return out

    def encode(self, observation: Observation, rows: Sequence[int] | np.ndarray) -> list[dict[str, Any]]:
        return [self._nest(o) for o in super().encode(observation, rows)]

    def probe_observation(self) -> dict[str, Any]:
        return self._nest(super().probe_observation())

    def decode_observation(
        self, native: Mapping[str, Any], reads_cameras: Sequence[str] = (), reads_state: Sequence[str] = ()
    ) -> Observation:
        images = native.get("images", {})
        if not isinstance(images, Mapping):
            raise ValueError(f"observation: 'images' must be a map of name -> image, got {type(images).__name__}")
        flat = {**{k: v for k, v in native.items() if k != "images"}, **images}
        return super().decode_observation(flat, reads_cameras, reads_state)

    # -- conventions --------------------------------------------------------------------------------
    def check_conventions(self, server: Mapping[str, Any]) -> tuple[list[str], dict[str, str]]:
        """Compare the server's declared ``action_spec``/``observation_spec`` with the env's conventions."""
        problems: list[str] = []
        info: dict[str, str] = {}
        mapping: VlaevalMapping = self.mapping  # type: ignore[assignment]
        action_spec, obs_spec = server.get("action_spec") or {}, server.get("observation_spec") or {}
        if not action_spec and not obs_spec:
            info["conventions"] = "the server declares none (action_spec, observation_spec): not checked"
            return problems, info
        groups = {g.name: g for g in self.spec.action_groups}
        pairs = self._pair_components(action_spec, problems)
        checked = []
        for comp, group in pairs:
            want = groups[group].convention
            got = str(action_spec[comp].get("format", "raw"))
            label = f"action {comp!r} -> env group {group!r}"
            if want is None or got == "raw":
                info[f"convention {comp}"] = f"{got} (env group {group} declares {want or 'none'}: not checked)"
                continue
            done = mapping.convert.get(group)
            if got == want and done is None:
                checked.append(f"{comp}={got}")
            elif done is not None and (got, want) in CONVERSIONS[done][0]:
                checked.append(f"{comp}={got} -> {want} ({done})")
            else:
                problems.append(mismatch(label, got, want, self.spec.name, lambda n, g=group: f'[convert] {g} = "{n}"'))
        if checked:
            info["conventions"] = ", ".join(checked)
        for key, spec in obs_spec.items():
            fmt = str(spec.get("format", "raw")) if isinstance(spec, Mapping) else "raw"
            if key in ("image", "images"):
                if fmt not in ("rgb_hwc_uint8", "raw"):
                    problems.append(f"observation {key!r}: the server reads {fmt}; arena sends rgb_hwc_uint8 images")
            elif key in self.keys and self.keys[key].kind == "state" and fmt != "raw":
                sent = mapping.state_formats.get(key)
                if sent is None:
                    problems.append(
                        f"observation {key!r}: the server reads {fmt}; mapping {mapping.name or mapping.source} does "
                        f"not say what its {key!r} ({self.keys[key].source}) carries: check it, then declare "
                        f'[state_formats] {key} = "{fmt}"'
                    )
                elif sent != fmt:
                    problems.append(f"observation {key!r}: the server reads {fmt}, the mapping sends {sent}")
        return problems, info

    def restrict(self, server: Mapping[str, Any]) -> None:
        """A server whose ``observation_spec`` lists no image reads none: send (and render) none."""
        obs_spec = server.get("observation_spec") or {}
        if obs_spec and not {"image", "images"} & set(obs_spec) and self.images:
            self.not_read = [e.key for e in self.images]
            self.keys = {k: v for k, v in self.keys.items() if k not in self.not_read}
            self.images, self.image_keys = [], []

    def _pair_components(self, action_spec: Mapping[str, Any], problems: list[str]) -> list[tuple[str, str]]:
        """Server action components -> env action groups (mapping, same name, or in order)."""
        mapping: VlaevalMapping = self.mapping  # type: ignore[assignment]
        names = list(action_spec)
        sizes = {g.name: g.size for g in self.spec.action_groups}
        if all(c in mapping.components or c in sizes for c in names):
            pairs = [(c, mapping.components.get(c, c)) for c in names]
        elif len(names) == len(self.action_groups):
            pairs = list(zip(names, self.action_groups))
        else:
            problems.append(
                f"actions: the server declares components {names}, the mapping feeds env groups "
                f'{list(self.action_groups)}; pair them with [components] COMPONENT = "GROUP"'
            )
            return []
        out = []
        for comp, group in pairs:
            dims = action_spec[comp].get("dims", 0) if isinstance(action_spec[comp], Mapping) else 0
            if group not in sizes:
                problems.append(f"[components] {comp} = {group!r}: env {self.spec.name} has no such action group")
            elif dims and dims != sizes[group]:
                problems.append(
                    f"action {comp!r}: the server declares {dims} dims, env group {group!r} has {sizes[group]}"
                )
            else:
                out.append((comp, group))
        return out
