"""Reference server: any arena policy family behind the GR00T protocol.

``arena-gr00t serve --policy expert --env metaworld/reach-v3 --port 5555`` builds the family
for the env's spec (:class:`arena.remote.serving.ServedPolicy`) and answers GR00T requests with
:class:`Gr00tServer`. The modality config is derived from the env spec by name:

- video keys: the cameras the served policy reads (``--image-keys policy``, the default:
  none for the state-based expert, so clients render nothing) or every env camera
  (``--image-keys env``); delta_indices ``[0]``;
- state keys: every env state group, delta_indices ``[0]``;
- action keys: the env's action groups, delta_indices ``range(H)`` with H the served
  policy's chunk length (``describe().action_horizon``);
- language key ``annotation.human.task_description``.

Observations are checked key by key (form, presence, dtype, shape) and every mismatch is an
error reply naming the key, the expected and the received shape; the server keeps serving.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from arena.contract import EnvSpec, Observation
from arena.errors import ContractError
from arena.remote.serving import (
    IMAGE_KEYS,
    ServedHandler,
    ServedPolicy,
    add_image_keys_argument,
    add_server_arguments,
    checked_array,
    serve_main,
)
from arena.validators import int_arg
from arena_gr00t.policy import TOKEN_ENV
from arena_gr00t.server import Gr00tServer
from arena_gr00t.translator import shape_text
from arena_gr00t.wire.codec import DEFAULT_MAX_MESSAGE_BYTES, ModalityConfig
from arena_gr00t.wire.errors import Gr00tError
from arena_gr00t.wire.observation import flat_to_nested, is_flat
from arena_gr00t.wire.transport import DEFAULT_PORT

__all__ = ["LANGUAGE_KEY", "VIDEO_KEYS", "ServedGr00tHandler", "modality_config_for", "serve"]

log = logging.getLogger(__name__)

LANGUAGE_KEY = "annotation.human.task_description"
VIDEO_KEYS = IMAGE_KEYS


def modality_config_for(spec: EnvSpec, cameras: Sequence[str], action_horizon: int) -> dict[str, ModalityConfig]:
    """The GR00T modality config of ``spec``: keys are the env's names (see the module doc)."""
    return {
        "video": ModalityConfig([0], list(cameras)),
        "state": ModalityConfig([0], list(spec.state_groups)),
        "action": ModalityConfig(list(range(action_horizon)), [g.name for g in spec.action_groups]),
        "language": ModalityConfig([0], [LANGUAGE_KEY]),
    }


class ServedGr00tHandler(ServedHandler):
    """A :class:`arena_gr00t.server.Gr00tHandler` over a ServedPolicy: GR00T dicts <-> canonical types."""

    def __init__(self, served: ServedPolicy, *, flat: bool = False, video_keys: str = "policy") -> None:
        super().__init__(served, video_keys)
        self.flat = flat
        self.modality_config = modality_config_for(served.spec, self.cameras, self.horizon)

    def get_modality_config(self) -> dict[str, ModalityConfig]:
        return dict(self.modality_config)

    def reset(self, options: dict[str, Any] | None = None) -> dict[str, Any]:
        self.served.reset()
        return {}

    def get_action(
        self, observation: dict[str, Any], options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        chunk = self.infer(self.to_canonical(observation))
        return self.action_groups(chunk, "action." if self.flat else ""), {}

    # ------------------------------------------------------------------ conversion

    def to_canonical(self, observation: Any) -> Observation:
        """Check a GR00T observation key by key and turn it into a canonical Observation."""
        if not isinstance(observation, Mapping):
            raise ContractError(f"observation: expected a map, got {type(observation).__name__}")
        if self.flat:
            if not is_flat(observation):
                raise ContractError(
                    "observation: this server takes the flat form ('video.KEY', 'state.KEY', language key); "
                    f"got the nested form (top-level keys {sorted(observation)})"
                )
            try:
                nested = flat_to_nested(observation)
            except ValueError as exc:
                raise ContractError(f"observation: {exc}") from None
        else:
            if is_flat(observation):
                raise ContractError(
                    "observation: this server takes the nested form ({'video': {...}, 'state': {...}, "
                    f"'language': {{...}}}}); got flat keys {sorted(observation)} (start it with --flat for that form)"
                )
            nested = dict(observation)
        extra = sorted(set(nested) - {"video", "state", "language"})
        if extra:
            raise ContractError(f"observation: unexpected top-level key(s) {extra}; expected video, state, language")
        sizes: dict[str, int] = {}
        images = {
            key: self._frames(nested, "video", key, np.uint8, (*self.spec.cameras[key], 3), sizes)
            for key in self.modality_config["video"].modality_keys
        }
        state = {
            key: self._frames(nested, "state", key, np.float32, (self.spec.state_size(key),), sizes).astype(
                np.float32, copy=False
            )
            for key in self.modality_config["state"].modality_keys
        }
        for modality in ("video", "state"):
            unknown = sorted(set(nested.get(modality, {})) - set(self.modality_config[modality].modality_keys))
            if unknown:
                raise ContractError(
                    f"observation: unknown {modality} key(s) {unknown}; this server takes "
                    f"{list(self.modality_config[modality].modality_keys) or 'none'}"
                )
        language = nested.get("language", {})
        unknown = sorted(set(language) - {LANGUAGE_KEY})
        if unknown:
            raise ContractError(f"observation: unknown language key(s) {unknown}; this server takes {LANGUAGE_KEY!r}")
        if LANGUAGE_KEY not in language:
            raise ContractError(f"observation: missing language key {LANGUAGE_KEY!r} (the task instruction)")
        texts = language[LANGUAGE_KEY]
        if not isinstance(texts, list) or not all(
            isinstance(x, list) and len(x) == 1 and isinstance(x[0], str) for x in texts
        ):
            raise ContractError(f"language[{LANGUAGE_KEY!r}]: expected B lists of one string each")
        instructions = [x[0] for x in texts]
        sizes[f"language[{LANGUAGE_KEY!r}]"] = len(instructions)
        batch = set(sizes.values())
        if len(batch) != 1:
            detail = ", ".join(f"{k} has {v}" for k, v in sizes.items())
            raise ContractError(f"observation: inconsistent batch sizes: {detail}")
        b = batch.pop()
        return Observation(images=images, state=state, instruction=instructions, env_ids=np.arange(b))

    def _frames(
        self,
        nested: Mapping[str, Any],
        modality: str,
        key: str,
        dtype: Any,
        frame: tuple[int, ...],
        sizes: dict[str, int],
    ) -> np.ndarray:
        """The delta-0 frame (B, *frame) of ``modality.key``, after checking (B, 1, *frame)."""
        name = f"{modality}.{key}" if self.flat else f"{modality}[{key!r}]"
        group = nested.get(modality)
        if not isinstance(group, Mapping) or key not in group:
            raise ContractError(
                f"observation: missing {name}; expected {np.dtype(dtype).name} {shape_text(('B', 1, *frame))}"
            )
        arr = checked_array(name, group[key], "image" if dtype is np.uint8 else "state", ("B", 1, *frame))
        shape = arr.shape
        sizes[name] = shape[0]
        return arr[:, -1]


# --------------------------------------------------------------------------- command line


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The protocol's flags of ``arena-gr00t serve`` (the shared ones come from serve_main)."""
    g = parser.add_argument_group("GR00T server")
    add_server_arguments(g, DEFAULT_PORT, TOKEN_ENV, "require this token on every request")
    g.add_argument(
        "--allow-kill",
        action="store_true",
        help="honour `kill` without a token (with a token, only authenticated requests reach it anyway)",
    )
    g.add_argument(
        "--max-message-bytes",
        type=int_arg(1),
        default=DEFAULT_MAX_MESSAGE_BYTES,
        help=f"largest request accepted, in bytes; larger ones get an error reply (default: {DEFAULT_MAX_MESSAGE_BYTES})",
    )
    g.add_argument(
        "--flat",
        "--use-sim-policy-wrapper",
        dest="flat",
        action="store_true",
        help="take the flat observation form ('video.KEY', 'state.KEY') and answer 'action.KEY', as upstream "
        "does with --use-sim-policy-wrapper",
    )
    add_image_keys_argument(g, "image (GR00T: video)")


def serve(served: ServedPolicy, args: argparse.Namespace) -> int:
    """Serve ``served`` until Ctrl-C, SIGTERM or an authorised ``kill``."""
    token = args.token or os.environ.get(TOKEN_ENV) or None
    handler = ServedGr00tHandler(served, flat=args.flat, video_keys=args.image_keys)
    try:
        server = Gr00tServer(
            handler,
            host=args.host,
            port=args.port,
            api_token=token,
            allow_kill=args.allow_kill,
            max_message_bytes=args.max_message_bytes,
        )
    except Gr00tError as exc:
        log.error("%s", exc)
        return 2
    config = handler.modality_config
    log.info(
        "serving policy %s for %s on %s (%s form, token %s, kill %s): video %s, state %s, action %s x %d",
        served.name,
        served.env_id,
        server.address,
        "flat" if args.flat else "nested",
        "required" if token else "not required",
        "allowed" if token or args.allow_kill else "refused",
        list(config["video"].modality_keys),
        list(config["state"].modality_keys),
        list(config["action"].modality_keys),
        handler.horizon,
    )
    try:
        server.serve_forever()
    finally:
        server.close()
    return 0


def serve_command(argv: Sequence[str] | None) -> int:
    return serve_main(
        "arena-gr00t serve",
        "Serve any arena policy family behind the GR00T protocol (ZeroMQ + msgpack), with a modality "
        "config derived from the env spec. Family flags appear once --policy/--env are given.",
        argv,
        add_serve_arguments,
        serve,
    )
