"""The ``arena-openpi`` command: ``serve`` (reference server) and ``mapping`` (print a mapping)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from arena.serving import command_main

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

    parser = argparse.ArgumentParser(prog="arena-openpi mapping", description="Print a packaged openpi mapping file.")
    parser.add_argument(
        "name", nargs="?", choices=sorted(PACKAGED_MAPPINGS), help="omitted: list the packaged mappings"
    )
    args = parser.parse_args(list(argv))
    if args.name is None:
        auto = {m: e for e, m in EMBODIMENT_MAPPINGS.items()}
        for name in PACKAGED_MAPPINGS:
            note = (
                f"auto-selected for embodiment {auto[name]!r} (openpi:{auto[name]})"
                if name in auto
                else "--mapping " + name
            )
            print(f"{name}\t{note}")
        return 0
    print(packaged_mapping(args.name).read_text(encoding="utf-8"), end="")
    return 0


def _serve_command(argv: Sequence[str]) -> int:
    from arena_openpi.serve import serve_command

    return serve_command(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return command_main("arena-openpi", USAGE, {"serve": _serve_command, "mapping": _mapping_command}, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
