"""Reference server: any arena policy family behind the openpi protocol.

``arena-openpi serve --policy expert --env metaworld/reach-v3 --port 8000`` builds the
family for the env's spec (:class:`arena.remote.serving.ServedPolicy`) and answers openpi requests
with :class:`~arena_openpi.server.OpenpiServer` (metadata frame, ``/healthz``, traceback
TEXT frame + close 1011 on error, 127.0.0.1 by default, optional API key, size limit).
The observation keys are derived from the env spec (:mod:`arena_openpi.layout`) and stated in
the metadata frame, so a client checks its mapping against them at preflight. Requests are
checked key by key; a mismatch is an error frame naming the key, expected and received.

openpi has no reset message, so the served policy is never reset: serve stateless policies.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from arena.contract import Observation
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
from arena_openpi.layout import ACTIONS_KEY, PROMPT_KEY, ServedLayout, build_layout
from arena_openpi.policy import API_KEY_ENV
from arena_openpi.server import OpenpiServer, write_port_file
from arena_openpi.translator import shape_text
from arena_openpi.wire.client import DEFAULT_PORT
from arena_openpi.wire.codec import DEFAULT_MAX_MESSAGE_BYTES

__all__ = ["IMAGE_KEYS", "ServedOpenpiPolicy", "serve", "serve_command"]

log = logging.getLogger(__name__)


class ServedOpenpiPolicy(ServedHandler):
    """openpi's ``infer(obs) -> dict`` over a ServedPolicy: openpi maps <-> canonical types."""

    def __init__(self, served: ServedPolicy, image_keys: str = "policy") -> None:
        super().__init__(served, image_keys)
        desc = served.description
        self.layout: ServedLayout = build_layout(
            served.spec, served.name, self.cameras, desc.uses_instruction, self.horizon
        )
        self.metadata: dict[str, Any] = self.layout.to_metadata()

    def infer(self, obs: dict[str, Any]) -> dict[str, Any]:
        chunk = super().infer(self.to_canonical(obs))
        return {ACTIONS_KEY: np.ascontiguousarray(chunk[0], dtype=np.float32)}

    def to_canonical(self, obs: Mapping[str, Any]) -> Observation:
        """Check each key of the layout and build a one-row Observation (extra keys are ignored)."""
        images: dict[str, np.ndarray] = {}
        state: dict[str, np.ndarray] = {}
        spec = self.served.spec
        for key, entry in self.layout.entries.items():
            if key not in obs:
                want = "str (the instruction)" if entry.kind == "prompt" else _expected(entry.kind, entry.shape)
                raise ContractError(f"observation: missing key {key!r}; expected {want}")
            value = obs[key]
            if entry.kind == "prompt":
                if not isinstance(value, str):
                    raise ContractError(f"{key}: expected str (the instruction), received {type(value).__name__}")
                continue
            checked_array(key, value, entry.kind, entry.shape)
            if entry.kind == "image":
                assert entry.camera is not None
                images[entry.camera] = value[None]
            else:
                offset = 0
                for group in entry.groups:
                    n = spec.state_size(group)
                    state[group] = value[None, offset : offset + n].astype(np.float32)
                    offset += n
        prompt = obs.get(PROMPT_KEY, "")
        return Observation(
            images=images, state=state, instruction=[prompt if isinstance(prompt, str) else ""], env_ids=[0]
        )


def _expected(kind: str, shape: Sequence[int]) -> str:
    return f"{'uint8' if kind == 'image' else 'float32'} {shape_text(shape)}"


# --------------------------------------------------------------------------- command line


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The protocol's flags of ``arena-openpi serve`` (the shared ones come from serve_main)."""
    g = parser.add_argument_group("openpi server")
    add_server_arguments(g, DEFAULT_PORT, API_KEY_ENV, "require 'Authorization: Api-Key TOKEN' on connections")
    g.add_argument("--port-file", default=None, help="write the bound port to this file once listening (atomic)")
    g.add_argument(
        "--max-message-bytes",
        type=int_arg(1),
        default=DEFAULT_MAX_MESSAGE_BYTES,
        help=f"largest request accepted, in bytes; larger ones close the connection with 1009 "
        f"(default: {DEFAULT_MAX_MESSAGE_BYTES})",
    )
    g.add_argument(
        "--debug-errors",
        action="store_true",
        help="send clients the full traceback of a failure (default: a one-line message; the log has it)",
    )
    add_image_keys_argument(g)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(served: ServedPolicy, args: argparse.Namespace) -> int:
    """Serve ``served`` until Ctrl-C or SIGTERM."""
    api_key = args.token or os.environ.get(API_KEY_ENV) or None
    handler = ServedOpenpiPolicy(served, image_keys=args.image_keys)
    if not api_key and not _loopback(args.host):
        log.warning("serving on %s without an API key: anyone who can reach this port can query the policy", args.host)
    server = OpenpiServer(
        handler,
        handler.metadata,
        host=args.host,
        port=args.port,
        api_key=api_key,
        max_message_bytes=args.max_message_bytes,
        concurrency=1,
        debug_errors=args.debug_errors,
    )
    try:
        server.start()
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", args.host, args.port, exc)
        return 2
    layout = handler.layout
    log.info(
        "serving policy %s for %s on ws://%s:%d (API key %s): %s -> %s (%d, %d)",
        served.name,
        served.env_id,
        args.host,
        server.port,
        "required" if api_key else "not required",
        ", ".join(f"{k} {shape_text(e.shape) if e.kind != 'prompt' else 'str'}" for k, e in layout.entries.items()),
        ACTIONS_KEY,
        layout.action_horizon,
        layout.action_dim,
    )
    if args.port_file:
        write_port_file(args.port_file, server.port)
    try:
        while not server.wait(0.5):  # short joins keep Ctrl-C and SIGTERM responsive
            pass
    finally:
        server.stop()
    return 0


def serve_command(argv: Sequence[str] | None = None) -> int:
    """``arena-openpi serve --policy FAMILY --env ENV [family flags] [--host H] --port P``."""
    return serve_main(
        "arena-openpi serve",
        "Serve an arena policy family behind the openpi protocol (WebSocket + msgpack-numpy). "
        "Observation keys follow the env spec and are stated in the metadata frame.",
        argv,
        add_serve_arguments,
        serve,
    )
