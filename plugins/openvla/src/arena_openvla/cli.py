"""The ``arena-openvla`` command: ``serve`` (reference server) and ``mapping`` (print a mapping)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from arena.remote.serving import ServedPolicy, add_server_arguments, command_main, mapping_command, serve_main
from arena.validators import int_arg

__all__ = ["main"]

log = logging.getLogger(__name__)

USAGE = """usage: arena-openvla COMMAND ...

commands:
  serve     serve an arena policy family behind OpenVLA's POST /act
            (arena-openvla serve --policy expert --env metaworld/reach-v3 --port 8000)
  mapping   print a packaged mapping, a starting point for --mapping
            (arena-openvla mapping libero; without a name: list them)

`arena-openvla COMMAND --help` describes each command's flags.
"""


def _add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_arguments(
        parser, 8000, "OPENVLA_TOKEN", "require 'Authorization: Bearer TOKEN' (arena extension)", port_zero=False
    )
    parser.add_argument(
        "--mapping", default=None, help="mapping NAME|PATH naming the env camera of `image` (default: the env's)"
    )
    parser.add_argument(
        "--max-message-bytes", type=int_arg(1024), default=16 << 20, help="largest request body (default: 16 MiB)"
    )


def _serve(served: ServedPolicy, args: argparse.Namespace) -> int:
    import uvicorn

    from arena.remote.keymap import resolve_named_mapping
    from arena_openvla.mapping import PACKAGED_MAPPINGS, OpenvlaMapping, packaged_mapping
    from arena_openvla.server import ActHandler, make_app

    with served.assembly.scope():
        if args.mapping:
            packaged = {n: packaged_mapping(n) for n in PACKAGED_MAPPINGS}
            mapping = resolve_named_mapping(OpenvlaMapping, args.mapping, packaged)
        else:
            mapping = OpenvlaMapping.registered(served.spec)
    handler = ActHandler(served, mapping)
    token = args.token or os.environ.get("OPENVLA_TOKEN") or None
    app = make_app(handler, token=token, max_body_bytes=args.max_message_bytes)
    log.info("arena-openvla: %s on %s at http://%s:%d/act", served.name, served.env_id, args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def _serve_command(argv: Sequence[str]) -> int:
    return serve_main(
        "arena-openvla serve",
        "Serve an arena policy family behind OpenVLA's POST /act (json-numpy bodies).",
        argv,
        _add_serve_arguments,
        _serve,
    )


def _mapping_command(argv: Sequence[str]) -> int:
    from arena_openvla.mapping import EMBODIMENT_MAPPINGS, PACKAGED_MAPPINGS, packaged_mapping

    return mapping_command("openvla", PACKAGED_MAPPINGS, EMBODIMENT_MAPPINGS, packaged_mapping, argv)


def main(argv: Sequence[str] | None = None) -> int:
    return command_main("arena-openvla", USAGE, {"serve": _serve_command, "mapping": _mapping_command}, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
