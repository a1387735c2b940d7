"""Canonical arena Observation <-> GR00T observation, GR00T action map -> env action chunk.

Built from three things: the server's modality config (which keys it wants and how many
frames), a mapping file (which env names feed those keys) and the env spec (what the env
actually has). Every server key the mapping cannot feed, every mapping name the env lacks
and every size that disagrees becomes a *problem* string naming the key, the expected and the
received shape; the policy reports them at preflight and refuses to run while any remain, so
nothing is ever zero-filled.

Frames: a video/state modality with ``delta_indices`` of length T > 1 (e.g. ``[-1, 0]``)
gets a per-env history buffer. Its unit is one policy query: the frame at delta ``-k`` is the
observation of the k-th previous query of that env (equal to env steps when every step is a
query, e.g. ``--scheduler passthrough``). At an episode start the buffer is filled with the
first frame, as upstream GR00T's evaluation wrappers do.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from arena.arrays import take_rows, to_numpy
from arena.contract import EnvSpec, Observation
from arena.errors import PolicyError
from arena.images import flip, resize_with_pad
from arena.remote.names import camera_problem, resolve_runs, run_width, runs_text
from arena.remote.translate import action_conversions, apply_conversions
from arena_gr00t.mapping import Gr00tMapping, VectorEntry
from arena_gr00t.wire.codec import ModalityConfig
from arena_gr00t.wire.observation import action_to_nested

__all__ = ["FORMS", "FrameHistory", "Translator", "keys_are_prefixed", "shape_text"]

log = logging.getLogger(__name__)

FORMS = ("nested", "flat")
_INPUTS = ("video", "state")


def shape_text(shape: Sequence[Any]) -> str:
    """``(B, 1, 3)`` from ``("B", 1, 3)``: shapes as the messages print them."""
    return "(" + ", ".join(str(s) for s in shape) + ")"


def keys_are_prefixed(modality: Mapping[str, ModalityConfig]) -> bool:
    """True when video/state/action keys carry their modality prefix (``video.ego_view``).

    Servers of that generation (GR00T N1.5) take the flat observation form; this is the
    detection rule that needs no request.
    """
    keys = [(m, k) for m in ("video", "state", "action") if m in modality for k in modality[m].modality_keys]
    return bool(keys) and all(k.startswith(f"{m}.") for m, k in keys)


class FrameHistory:
    """The last ``1 - min(deltas)`` frames of one input, per env slot, for T > 1 inputs."""

    def __init__(self, num_envs: int, deltas: Sequence[int]) -> None:
        self.deltas = np.asarray(deltas, dtype=np.int64)
        self.depth = int(1 - self.deltas.min()) if len(self.deltas) else 1
        self.num_envs = num_envs
        self._buf: np.ndarray | None = None
        self._fresh = np.ones(num_envs, bool)

    @property
    def trivial(self) -> bool:
        return self.deltas.tolist() == [0]

    def reset(self, env_ids: Sequence[int] | np.ndarray) -> None:
        self._fresh[np.asarray(env_ids, dtype=np.int64)] = True

    def frames(self, env_ids: np.ndarray, current: np.ndarray) -> np.ndarray:
        """Push ``current`` (B, ...) for ``env_ids``; return (B, T, ...) at the delta indices."""
        if self.trivial:
            return current[:, None]
        shape = current.shape[1:]
        if self._buf is None or self._buf.shape[2:] != shape or self._buf.dtype != current.dtype:
            self._buf = np.zeros((self.num_envs, self.depth, *shape), current.dtype)
            self._fresh[:] = True
        buf, ids = self._buf, np.asarray(env_ids, dtype=np.int64)
        fresh = self._fresh[ids]
        old = ids[~fresh]
        if len(old):
            buf[old, :-1] = buf[old, 1:]
        buf[ids, -1] = current
        if fresh.any():
            buf[ids[fresh]] = current[fresh][:, None]
        self._fresh[ids] = False
        return buf[ids][:, self.depth - 1 + self.deltas]


@attrs.frozen
class _Vector:
    """A state or action key resolved against the env: (group, columns within the group) runs."""

    key: str
    runs: tuple[tuple[str, np.ndarray | None], ...]
    width: int
    groups: tuple[str, ...]
    columns: np.ndarray  # for actions: indices into the env's action vector


@attrs.frozen
class _Video:
    key: str
    camera: str
    size: tuple[int, int]
    flips: tuple[bool, bool] = (False, False)  # (rows, cols), see arena.remote.keymap.ImageEntry


def _unprefix(modality: str, key: str) -> str:
    return key[len(modality) + 1 :] if key.startswith(f"{modality}.") else key


def _sorted_list(names: Any) -> str:
    names = list(names)
    return ", ".join(names) if names else "none"


class Translator:
    """GR00T keys <-> env names for one env spec, built from a modality config and a mapping.

    ``problems`` lists everything that does not fit; ``encode`` / ``decode_actions`` may only
    be used when it is empty. ``warnings`` lists mapping entries the server does not ask for
    that would not fit this env either (harmless, logged).
    """

    def __init__(
        self,
        modality: Mapping[str, ModalityConfig],
        mapping: Gr00tMapping,
        spec: EnvSpec,
        num_envs: int,
    ) -> None:
        self.modality = dict(modality)
        self.mapping = mapping
        self.spec = spec
        self.num_envs = num_envs
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.prefixed = keys_are_prefixed(modality)
        src = mapping.source
        #: (env action columns, conversion) of the mapping's [convert] table, applied to decoded actions
        self.conversions = action_conversions(mapping.convert, spec, f"mapping {src}", self.problems)

        unknown = sorted(set(modality) - {"video", "state", "action", "language"})
        if unknown:
            self.problems.append(
                f"the server's modality config has modalities {unknown} this client does not know "
                f"(known: video, state, action, language)"
            )

        self.deltas: dict[str, tuple[int, ...]] = {}
        for m in _INPUTS:
            if m in modality and modality[m].modality_keys:
                deltas = modality[m].delta_indices
                if not deltas:
                    self.problems.append(f"{m} modality: empty delta_indices (no frame to send)")
                elif max(deltas) > 0:
                    self.problems.append(
                        f"{m} modality: delta_indices {list(deltas)} ask for future frames (> 0); "
                        f"a closed-loop client can only send the current and past frames"
                    )
                self.deltas[m] = tuple(deltas)

        # video ---------------------------------------------------------------------------
        self.video: list[_Video] = []
        requested = [_unprefix("video", k) for k in modality["video"].modality_keys] if "video" in modality else []
        for key in requested:
            entry = mapping.video.get(key)
            if entry is None:
                self.problems.append(
                    f"video key {key!r}: requested by the server but not in mapping {src} "
                    f"(mapped video keys: {_sorted_list(mapping.video)})"
                )
                continue
            problem = camera_problem(f"video key {key!r}", entry.camera, spec, f"mapping {src}")
            if problem:
                self.problems.append(problem)
                continue
            size = entry.size or tuple(spec.cameras[entry.camera])
            self.video.append(_Video(key, entry.camera, size, entry.flips))
        for key, entry in mapping.video.items():
            if key not in requested and entry.camera not in spec.cameras:
                self.warnings.append(f"unused video key {key!r}: camera {entry.camera!r} is not an env camera")

        # state ---------------------------------------------------------------------------
        self.state: list[_Vector] = []
        requested = [_unprefix("state", k) for k in modality["state"].modality_keys] if "state" in modality else []
        t_state = len(self.deltas.get("state", (0,)))
        for key in requested:
            entry = mapping.state.get(key)
            if entry is None:
                self.problems.append(
                    f"state key {key!r}: requested by the server but not in mapping {src} "
                    f"(mapped state keys: {_sorted_list(mapping.state)})"
                )
                continue
            vec = self._vector(entry, spec.state_groups, "state", self.problems)
            if vec is None:
                continue
            if entry.size is not None and entry.size != vec.width:
                self.problems.append(
                    f"state key {key!r}: expected shape {shape_text(('B', t_state, entry.size))} "
                    f"(mapping {src} size {entry.size}), received {shape_text(('B', t_state, vec.width))} "
                    f"from env {self._describe_sources(vec, spec.state_groups)}"
                )
                continue
            self.state.append(vec)
        for key, entry in mapping.state.items():
            if key not in requested:
                self._vector(entry, spec.state_groups, "state", self.warnings)

        # language ------------------------------------------------------------------------
        self.language_key: str | None = None
        for key in modality["language"].modality_keys if "language" in modality else ():
            if mapping.language_key is None:
                self.problems.append(
                    f"language key {key!r}: requested by the server but mapping {src} has no [language] key"
                )
            elif key != mapping.language_key:
                self.problems.append(
                    f"language key {key!r}: requested by the server but mapping {src} feeds the "
                    f"instruction to {mapping.language_key!r}"
                )
            elif self.language_key is None:
                self.language_key = key

        # action --------------------------------------------------------------------------
        self.actions: list[_Vector] = []
        self.action_horizon = 0
        action_groups = {g.name: g.elements for g in spec.action_groups}
        requested = [_unprefix("action", k) for k in modality["action"].modality_keys] if "action" in modality else []
        if "action" not in modality or not requested:
            self.problems.append("the server's modality config has no action keys")
        else:
            self.action_horizon = len(modality["action"].delta_indices)
            if self.action_horizon < 1:
                self.problems.append("action modality: empty delta_indices (action horizon 0)")
        horizon = self.action_horizon or "H"
        fed = np.zeros(spec.action_dim, np.int64)
        feeders: dict[int, list[str]] = {}
        for key in requested:
            entry = mapping.action.get(key)
            if entry is None:
                self.problems.append(
                    f"action key {key!r}: returned by the server but not in mapping {src} "
                    f"(mapped action keys: {_sorted_list(mapping.action)})"
                )
                continue
            vec = self._vector(entry, action_groups, "action", self.problems)
            if vec is None:
                continue
            for c in vec.columns:
                fed[c] += 1
                feeders.setdefault(int(c), []).append(key)
            if entry.size is not None and entry.size != vec.width:
                self.problems.append(
                    f"action key {key!r}: expected shape {shape_text(('B', horizon, vec.width))} by env "
                    f"{self._describe_sources(vec, action_groups)}, received "
                    f"{shape_text(('B', horizon, entry.size))} from the model (mapping {src} size {entry.size})"
                )
                continue
            self.actions.append(vec)
        names = [f"{g.name}.{e}" for g in spec.action_groups for e in g.elements]
        if requested:
            unfed = [names[i] for i in np.flatnonzero(fed == 0)]
            if unfed:
                self.problems.append(
                    f"env action element(s) {', '.join(unfed)} of {spec.name} are fed by no action key "
                    f"(server action keys: {_sorted_list(requested)}; mapping {src})"
                )
            for i in np.flatnonzero(fed > 1):
                self.problems.append(
                    f"env action element {names[i]} is fed by several action keys: {', '.join(feeders[int(i)])}"
                )
        for key, entry in mapping.action.items():
            if key not in requested:
                self._vector(entry, action_groups, "action", self.warnings)
        for w in self.warnings:
            log.debug("gr00t mapping %s: %s", src, w)

        # One buffer per key: keys of a modality share delta_indices, not frames.
        self.histories: dict[str, FrameHistory] = {}
        for m, keys in (("video", [v.key for v in self.video]), ("state", [s.key for s in self.state])):
            for key in keys:
                self.histories[f"{m}.{key}"] = FrameHistory(num_envs, self.deltas.get(m) or (0,))

    # ------------------------------------------------------------------ resolution

    def _vector(
        self, entry: VectorEntry, groups: Mapping[str, Sequence[str]], kind: str, sink: list[str]
    ) -> _Vector | None:
        runs, problems = resolve_runs(
            f"{kind} key {entry.key!r}",
            groups,
            kind,
            self.spec.name,
            f"mapping {self.mapping.source}",
            groups=entry.groups,
            joints=entry.joints,
        )
        if problems:
            sink.extend(problems)
            return None
        width = run_width(runs, groups)
        columns = np.zeros(0, np.int64)
        if kind == "action":
            parts = []
            for g, cols in runs:
                sl = self.spec.action_slice(g)
                parts.append(np.arange(sl.start, sl.stop) if cols is None else sl.start + cols)
            columns = np.concatenate(parts).astype(np.int64)
        return _Vector(entry.key, tuple(runs), width, tuple(dict.fromkeys(g for g, _ in runs)), columns)

    @staticmethod
    def _describe_sources(vec: _Vector, groups: Mapping[str, Sequence[str]]) -> str:
        return runs_text(vec.runs, groups)

    # ------------------------------------------------------------------ description

    @property
    def cameras(self) -> dict[str, None]:
        """Env cameras read (any size: images are resized with padding to the model's size)."""
        return {v.camera: None for v in self.video}

    @property
    def state_sizes(self) -> dict[str, int]:
        """Env state groups read, with the env's size (joint-level keys read part of a group)."""
        return {g: self.spec.state_size(g) for vec in self.state for g in vec.groups}

    @property
    def uses_instruction(self) -> bool:
        return self.language_key is not None

    def frames(self, modality: str) -> int:
        return len(self.deltas.get(modality, (0,)))

    def info(self) -> dict[str, str]:
        """Compact key summaries for `arena check` (``key<-source size``; T frames, H steps)."""

        def name(key: str, sources: Sequence[str], arrow: str) -> str:
            return key if list(sources) == [key] else f"{key}{arrow}{'+'.join(sources)}"

        out: dict[str, str] = {"mapping": self.mapping.source}
        if self.video:
            out["video keys"] = (
                ", ".join(f"{name(v.key, [v.camera], '<-')} {v.size[0]}x{v.size[1]}" for v in self.video)
                + f" (T={self.frames('video')})"
            )
        if self.state:
            out["state keys"] = ", ".join(f"{name(s.key, s.groups, '<-')} {s.width}" for s in self.state) + (
                f" (T={self.frames('state')})"
            )
        if self.actions:
            out["action keys"] = ", ".join(f"{name(a.key, a.groups, '->')} {a.width}" for a in self.actions) + (
                f" (H={self.action_horizon})"
            )
        if self.language_key:
            out["language key"] = self.language_key
        if any(not h.trivial for h in self.histories.values()):
            out["history"] = (
                "T>1: per-env buffer of previous queries' observations "
                "(env steps apart only when every step is a query)"
            )
        return out

    # ------------------------------------------------------------------ runtime

    def reset(self, env_ids: Sequence[int] | np.ndarray) -> None:
        for h in self.histories.values():
            h.reset(env_ids)

    def encode(self, observation: Observation, rows: np.ndarray, form: str) -> dict[str, Any]:
        """The GR00T observation for rows ``rows`` (positions) of ``observation``, batch B = len(rows)."""
        env_ids = observation.env_ids[rows]
        if len(env_ids) and (env_ids.min() < 0 or env_ids.max() >= self.num_envs):
            raise PolicyError(f"gr00t: env ids {env_ids.tolist()} outside 0..{self.num_envs - 1}")
        video: dict[str, np.ndarray] = {}
        for v in self.video:
            images = observation.images.get(v.camera)
            if images is None:
                raise PolicyError(f"gr00t: the observation has no image of camera {v.camera!r} (video key {v.key!r})")
            batch = take_rows(images, rows)
            if any(v.flips):
                batch = flip(batch, *v.flips)
            batch = resize_with_pad(batch, *v.size)
            video[v.key] = self.histories[f"video.{v.key}"].frames(env_ids, batch)
        state: dict[str, np.ndarray] = {}
        for s in self.state:
            parts = []
            for g, cols in s.runs:
                arr = observation.state.get(g)
                if arr is None:
                    raise PolicyError(f"gr00t: the observation has no state group {g!r} (state key {s.key!r})")
                block = to_numpy(take_rows(arr, rows), np.float32)  # fancy indexing: a fresh contiguous copy
                parts.append(block if cols is None else block[:, cols])
            value = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
            state[s.key] = self.histories[f"state.{s.key}"].frames(env_ids, value)
        language = [observation.instruction[int(r)] for r in rows] if self.language_key else []
        return self.pack(video, state, language, form)

    def probe_observation(self, form: str) -> dict[str, Any]:
        """A B=1 observation of the right shapes (zeros, first task's instruction) for preflight."""
        tv, ts = self.frames("video"), self.frames("state")
        video = {v.key: np.zeros((1, tv, *v.size, 3), np.uint8) for v in self.video}
        state = {s.key: np.zeros((1, ts, s.width), np.float32) for s in self.state}
        language = [self.spec.tasks[0].instruction] if self.language_key else []
        return self.pack(video, state, language, form)

    def pack(
        self, video: Mapping[str, np.ndarray], state: Mapping[str, np.ndarray], language: list[str], form: str
    ) -> dict[str, Any]:
        """Arrange per-key arrays in the nested or flat observation form."""
        if form == "flat":
            out: dict[str, Any] = {f"video.{k}": v for k, v in video.items()}
            out.update({f"state.{k}": v for k, v in state.items()})
            if self.language_key:
                out[self.language_key] = list(language)
            return out
        nested: dict[str, Any] = {}
        if "video" in self.modality:
            nested["video"] = dict(video)
        if "state" in self.modality:
            nested["state"] = dict(state)
        if "language" in self.modality:
            nested["language"] = {self.language_key: [[s] for s in language]} if self.language_key else {}
        return nested

    def decode_actions(self, action: Mapping[str, Any], batch: int) -> np.ndarray:
        """The server's action map -> (B, H, A) in the env's action order; errors name key and shapes."""
        if self.problems:  # the action vector would not be covered: never hand out partial actions
            raise PolicyError("gr00t: the translator has problems: " + "; ".join(self.problems))
        if not isinstance(action, Mapping):
            raise PolicyError(f"gr00t: expected an action map from the server, got {type(action).__name__}")
        action = action_to_nested(action)
        groups = {g.name: g.elements for g in self.spec.action_groups}
        horizon = self.action_horizon
        out = np.empty((batch, horizon, self.spec.action_dim), np.float32)
        for a in self.actions:
            arr = action.get(a.key)
            expected = shape_text((batch, horizon, a.width))
            if arr is None:
                raise PolicyError(
                    f"gr00t: action key {a.key!r} missing from the server's reply (expected shape {expected}; "
                    f"reply keys: {_sorted_list(action)})"
                )
            shape = tuple(getattr(arr, "shape", ()))
            if shape != (batch, horizon, a.width) or getattr(arr, "dtype", np.dtype(object)).kind not in "fiu":
                dtype = getattr(arr, "dtype", type(arr).__name__)
                raise PolicyError(
                    f"gr00t: action key {a.key!r}: expected shape {expected} (env {self._describe_sources(a, groups)}), "
                    f"received {shape_text(shape)} {dtype} from the server"
                )
            values = np.asarray(arr, np.float32)
            if not np.isfinite(values).all():
                raise PolicyError(f"gr00t: action key {a.key!r}: the server returned non-finite values")
            out[:, :, a.columns] = values
        return apply_conversions(out, self.conversions)
