"""attrs validators for family config fields, so a bad value fails naming its flag.

A field ``max_steps`` is the flag ``--max-steps``; every error is a
:class:`~arena.errors.ConfigError` naming the flag, what was expected and what
was received. None (an optional field left unset) always passes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from arena.config import flag_name
from arena.errors import ConfigError

__all__ = ["Validator", "at_least", "in_range", "one_of", "names_among", "accepted_by", "int_arg", "PORT_RANGE"]

#: TCP ports a server may bind (0: any free one) or a client may reach
PORT_RANGE = (0, 65535)

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]
"""What ``attrs.field(validator=...)`` calls: (instance, attribute, value)."""


def at_least(low: float, *, strict: bool = False, kind: str = "a value") -> Validator:
    """Refuse values below ``low`` (``strict``: ``low`` too); ``kind`` words the expectation ("an integer")."""
    op = ">" if strict else ">="

    def check(instance: object, attribute: attrs.Attribute, value: float | None) -> None:
        if value is not None and (value < low or (strict and value == low)):
            raise ConfigError(f"{flag_name(attribute.name)}: expected {kind} {op} {low}, got {value}")

    return check


def in_range(low: int, high: int, *, kind: str = "an integer") -> Validator:
    """Refuse values outside ``low..high`` (a port 70000, a negative count)."""

    def check(instance: object, attribute: attrs.Attribute, value: int | None) -> None:
        if value is not None and not low <= value <= high:
            raise ConfigError(f"{flag_name(attribute.name)}: expected {kind} in {low}..{high}, got {value}")

    return check


def int_arg(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse ``type=`` for integers in ``minimum..maximum``: a bad value is a one-line usage error."""
    import argparse

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
            raise argparse.ArgumentTypeError(f"expected an integer {bound}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def one_of(*values: object) -> Validator:
    """Refuse anything but ``values`` ("expected a, b or c, got 'x'")."""
    words = ", ".join(map(str, values[:-1])) + " or " + str(values[-1]) if len(values) > 1 else str(values[0])

    def check(instance: object, attribute: attrs.Attribute, value: object) -> None:
        if value is not None and value not in values:
            raise ConfigError(f"{flag_name(attribute.name)}: expected {words}, got {value!r}")

    return check


def names_among(known: Sequence[str], *, kind: str = "name", minimum: int = 0) -> Validator:
    """Refuse a tuple of names with unknown or repeated ones, or fewer than ``minimum`` (``--cameras``)."""

    def check(instance: object, attribute: attrs.Attribute, value: tuple[str, ...] | None) -> None:
        if value is None:
            return
        flag = flag_name(attribute.name)
        if len(value) < minimum:
            raise ConfigError(f"{flag}: expected at least {minimum} {kind}(s), got {len(value)}")
        unknown = [v for v in value if v not in known]
        if unknown:
            raise ConfigError(f"{flag}: unknown {kind}(s) {', '.join(unknown)}; known: {', '.join(known)}")
        if len(set(value)) != len(value):
            raise ConfigError(f"{flag}: duplicate {kind} names in {value}")

    return check


def accepted_by(parse: Callable[[Any], object]) -> Validator:
    """Refuse values ``parse`` raises ValueError on; its message says what is wrong (e.g. a host list)."""

    def check(instance: object, attribute: attrs.Attribute, value: object) -> None:
        if value is None:
            return
        try:
            parse(value)
        except ValueError as exc:
            raise ConfigError(f"{flag_name(attribute.name)}: {exc}") from None

    return check
