"""The ``arena-openpi`` command: ``serve`` (reference server) and ``mapping`` (print a mapping)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from arena.remote.serving import command_main, mapping_command

__all__ = ["main"]

USAGE = """usage: arena-openpi COMMAND ...

commands:
  serve     serve an arena policy family behind the openpi protocol
            (arena-openpi serve --policy expert --env metaworld/reach-v3 --port 8000)
  mapping   print a packaged mapping, a starting point for --mapping
            (arena-openpi mapping libero; without a name: list them)

`arena-openpi COMMAND --help` describes each command's flags.
"""


def _mapping_command(argv: Sequence[str]) -> int:
    from arena_openpi.mapping import EMBODIMENT_MAPPINGS, PACKAGED_MAPPINGS, packaged_mapping

    return mapping_command("openpi", PACKAGED_MAPPINGS, EMBODIMENT_MAPPINGS, packaged_mapping, argv)


def _serve_command(argv: Sequence[str]) -> int:
    from arena_openpi.serve import serve_command

    return serve_command(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return command_main("arena-openpi", USAGE, {"serve": _serve_command, "mapping": _mapping_command}, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
