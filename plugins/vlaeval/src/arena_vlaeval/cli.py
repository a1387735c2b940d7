"""The ``arena-vlaeval`` command: ``serve`` (any arena policy behind vla-eval) and ``mapping``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from arena.remote.serving import (
    ServedPolicy,
    add_image_keys_argument,
    add_server_arguments,
    command_main,
    mapping_command,
    serve_main,
)
from arena.validators import int_arg

__all__ = ["main"]

log = logging.getLogger(__name__)

USAGE = """usage: arena-vlaeval COMMAND ...

commands:
  serve     serve an arena policy family behind vla-eval's WebSocket protocol
            (arena-vlaeval serve --policy expert --env metaworld/reach-v3 --port 8000)
  mapping   print a packaged mapping, a starting point for --mapping
            (arena-vlaeval mapping metaworld; without a name: list them)

`arena-vlaeval COMMAND --help` describes each command's flags.
"""


def _float_ms(value: str) -> float:
    try:
        ms = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected milliseconds (a number >= 0), got {value!r}") from None
    if ms < 0:
        raise argparse.ArgumentTypeError(f"expected milliseconds >= 0, got {value!r}")
    return ms


def _add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("vla-eval server")
    add_server_arguments(
        g,
        8000,
        "VLAEVAL_TOKEN",
        "require 'Authorization: Bearer TOKEN' (an arena extension vla-eval's client cannot send)",
    )
    g.add_argument("--mapping", default=None, help="mapping NAME|PATH of the observation keys (default: the env's)")
    g.add_argument(
        "--max-wait-ms",
        type=_float_ms,
        default=5.0,
        help="observations of different sessions arriving within this window share one batched infer (default: 5; "
        "0: no wait). --max-batch is the most sessions at once",
    )
    g.add_argument(
        "--infer-batch",
        type=int_arg(1),
        default=None,
        help="most observations one infer answers (default: --max-batch; 1: one observation per infer)",
    )
    add_image_keys_argument(g)
    g.add_argument(
        "--max-message-bytes", type=int_arg(1024), default=64 << 20, help="largest message accepted (default: 64 MiB)"
    )
    g.add_argument("--port-file", default=None, help="write the bound port to this file once listening")


def _serve(served: ServedPolicy, args: argparse.Namespace) -> int:
    from arena.remote.keymap import mapping_for
    from arena_vlaeval.mapping import PACKAGED_MAPPINGS, VlaevalMapping, packaged_mapping
    from arena_vlaeval.server import VlaevalServer

    with served.assembly.scope():
        mapping = mapping_for(
            VlaevalMapping, args.mapping, {n: packaged_mapping(n) for n in PACKAGED_MAPPINGS}, served.spec
        )
    token = args.token or os.environ.get("VLAEVAL_TOKEN") or None
    try:
        server = VlaevalServer(
            served,
            mapping,
            token=token,
            max_message_bytes=args.max_message_bytes,
            max_wait_s=args.max_wait_ms / 1000,
            infer_batch=args.infer_batch,
            image_keys=args.image_keys,
        )
    except ValueError as exc:
        log.error("%s", exc)
        return 2

    def started(port: int) -> None:
        log.info(
            "serving %s for %s on ws://%s:%d (token %s, up to %d sessions, batch window %g ms)",
            served.name,
            served.env_id,
            args.host,
            port,
            "required" if token else "not required",
            served.max_batch,
            args.max_wait_ms,
        )
        if args.port_file:
            tmp = f"{args.port_file}.tmp"
            with open(tmp, "w") as fh:
                fh.write(f"{port}\n")
            os.replace(tmp, args.port_file)

    try:
        asyncio.run(server.serve(args.host, args.port, started))
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", args.host, args.port, exc)
        return 2
    return 0


def _serve_command(argv: Sequence[str]) -> int:
    return serve_main(
        "arena-vlaeval serve",
        "Serve an arena policy family behind vla-eval's WebSocket protocol (msgpack; one session per connection).",
        argv,
        _add_serve_arguments,
        _serve,
    )


def _mapping_command(argv: Sequence[str]) -> int:
    from arena_vlaeval.mapping import EMBODIMENT_MAPPINGS, PACKAGED_MAPPINGS, packaged_mapping

    return mapping_command("vlaeval", PACKAGED_MAPPINGS, EMBODIMENT_MAPPINGS, packaged_mapping, argv)


def main(argv: Sequence[str] | None = None) -> int:
    return command_main("arena-vlaeval", USAGE, {"serve": _serve_command, "mapping": _mapping_command}, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
