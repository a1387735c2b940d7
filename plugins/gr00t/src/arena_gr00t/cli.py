"""The ``arena-gr00t`` command: ``serve`` (reference server) and ``mapping`` (print a mapping)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from arena.remote.serving import command_main

__all__ = ["main"]

USAGE = """usage: arena-gr00t COMMAND ...

commands:
  serve     serve an arena policy family behind the GR00T protocol
            (arena-gr00t serve --policy expert --env metaworld/reach-v3 --port 5555)
  mapping   print the mapping registered for an embodiment (arena-gr00t mapping sawyer)

`arena-gr00t COMMAND --help` describes each command's flags.
"""


def _mapping_command(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="arena-gr00t mapping",
        description="Print the GR00T mapping registered as gr00t:EMBODIMENT (a starting point for --mapping).",
    )
    parser.add_argument("embodiment", nargs="?", help="embodiment name; omitted: list the registered ones")
    args = parser.parse_args(list(argv))
    from arena.errors import ArenaError
    from arena.plugins import current_plugins
    from arena_gr00t.mapping import load_mapping

    translators = current_plugins().translators
    names = [n for n in translators.names() if n.startswith("gr00t:")]
    if args.embodiment is None:
        for n in names:
            print(f"{n}\t{translators.get(n).help}")
        return 0
    name = f"gr00t:{args.embodiment}"
    if name not in translators:
        print(f"arena-gr00t: error: no mapping {name!r}; registered: {', '.join(names) or 'none'}", file=sys.stderr)
        return 2
    obj = translators.get(name).obj
    read_text = getattr(obj, "read_text", None)
    try:
        if callable(read_text):
            print(read_text(encoding="utf-8"), end="")
        else:
            print(repr(load_mapping(obj, name)))
    except ArenaError as exc:
        print(f"arena-gr00t: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _serve_command(argv: Sequence[str]) -> int:
    from arena_gr00t.serve import serve_command

    return serve_command(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return command_main("arena-gr00t", USAGE, {"serve": _serve_command, "mapping": _mapping_command}, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
