"""The ``arena-openpi`` command: ``serve`` (reference server) and ``mapping`` (print a mapping).

``arena-openpi serve`` parses its own flags (the served family's flags appear once --policy
and --env are known), so the subcommand is dispatched before argparse sees the rest.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "serve":
        from arena_openpi.serve import serve_command

        return serve_command(rest)
    if command == "mapping":
        return _mapping_command(rest)
    print(f"arena-openpi: error: unknown command {command!r}\n\n{USAGE}", file=sys.stderr, end="")
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
