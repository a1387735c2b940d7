"""attrs validators for family config fields, so a bad value fails naming its flag.

A field ``max_steps`` is the flag ``--max-steps``; every error is a
:class:`~arena.errors.ConfigError` naming the flag, what was expected and what
was received. None (an optional field left unset) always passes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from arena.config import flag_name
from arena.errors import ConfigError

__all__ = ["Validator", "at_least", "one_of", "accepted_by"]

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]
"""What ``attrs.field(validator=...)`` calls: (instance, attribute, value)."""


def at_least(low: float, *, strict: bool = False, kind: str = "a value") -> Validator:
    """Refuse values below ``low`` (``strict``: ``low`` too); ``kind`` words the expectation ("an integer")."""
    op = ">" if strict else ">="

    def check(instance: object, attribute: attrs.Attribute, value: float | None) -> None:
        if value is not None and (value < low or (strict and value == low)):
            raise ConfigError(f"{flag_name(attribute.name)}: expected {kind} {op} {low}, got {value}")

    return check


def one_of(*values: object) -> Validator:
    """Refuse anything but ``values`` ("expected a, b or c, got 'x'")."""
    words = ", ".join(map(str, values[:-1])) + " or " + str(values[-1]) if len(values) > 1 else str(values[0])

    def check(instance: object, attribute: attrs.Attribute, value: object) -> None:
        if value is not None and value not in values:
            raise ConfigError(f"{flag_name(attribute.name)}: expected {words}, got {value!r}")

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
