"""Mapping files of the protocol plugins: reading them and checking their structure.

A protocol plugin (``gr00t``, ``openpi``) connects a model's keys to an env's cameras and
groups by name, in one small TOML file per embodiment, registered as translator
``PREFIX:EMBODIMENT``. The schema is the plugin's; reading the file, finding the registered
one, and the field checks (messages name the file and the entry) are the same for every
protocol, so they live here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import attrs

from arena.errors import ConfigError
from arena.plugins import current_plugins

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

if TYPE_CHECKING:
    from arena.contract import EnvSpec

__all__ = [
    "MappingError",
    "MappingFile",
    "check_fields",
    "entries",
    "names",
    "opt_positive_int",
    "opt_size2",
    "opt_str",
    "table",
]

M = TypeVar("M", bound="MappingFile")


class MappingError(ConfigError):
    """A mapping file that cannot be read or does not follow the schema (names the file and entry)."""


class MappingFile:
    """Base of a protocol's mapping class: subclasses parse a dict (``from_dict``); loading is shared.

    Class attributes word the messages: ``translator_prefix`` (``gr00t``; also names
    ``docs/PREFIX.md``), ``protocol`` (``GR00T``) and ``mapping_hint`` (how to pass one).
    """

    __slots__ = ()
    translator_prefix: ClassVar[str]
    protocol: ClassVar[str]
    mapping_hint: ClassVar[str] = "--mapping PATH"

    @classmethod
    def from_dict(cls: type[M], data: Mapping[str, Any], source: str) -> M:
        raise NotImplementedError

    @classmethod
    def from_toml(cls: type[M], text: str, source: str) -> M:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise MappingError(f"mapping {source}: not valid TOML: {exc}") from None
        return cls.from_dict(data, source)

    @classmethod
    def from_file(cls: type[M], path: str | os.PathLike[str]) -> M:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise MappingError(f"--mapping: cannot read {p}: {exc.strerror or exc}") from None
        return cls.from_toml(text, str(p))

    @classmethod
    def resource_source(cls, name: str, resource: Any) -> str:
        """The ``source`` of a mapping read from an importlib.resources Traversable."""
        return f"{name} ({resource})"

    @classmethod
    def load(cls: type[M], obj: Any, name: str) -> M:
        """A registered translator object -> a mapping.

        Accepted: an instance, a path (str / os.PathLike) or importlib.resources Traversable
        of a TOML file, a dict in the file's shape, or a zero-argument callable returning any
        of these (so a plugin can build its mapping lazily).
        """
        if isinstance(obj, cls):
            return obj
        if isinstance(obj, Mapping):
            return cls.from_dict(obj, name)
        if isinstance(obj, (str, os.PathLike)):
            return cls.from_file(obj)
        read_text = getattr(obj, "read_text", None)
        if callable(read_text):
            return cls.from_toml(read_text(encoding="utf-8"), cls.resource_source(name, obj))
        if callable(obj):
            factory: Callable[[], Any] = obj
            return cls.load(factory(), name)
        article = "an" if cls.__name__[:1] in "AEIOU" else "a"
        raise MappingError(
            f"translator {name!r} is a {type(obj).__name__}; expected {article} {cls.__name__}, a TOML path, "
            f"a dict or a callable returning one"
        )

    @classmethod
    def registered(cls: type[M], env_spec: EnvSpec) -> M:
        """The mapping registered for ``env_spec``'s embodiment, its source naming the plugin."""
        prefix = cls.translator_prefix
        name = f"{prefix}:{env_spec.embodiment}"
        translators = current_plugins().translators
        if name not in translators:
            known = ", ".join(n for n in translators.names() if n.startswith(f"{prefix}:")) or "none"
            raise MappingError(
                f"no {cls.protocol} mapping for embodiment {env_spec.embodiment!r} (env {env_spec.name}); "
                f"registered: {known}. Pass {cls.mapping_hint}, or register translator {name!r} from a plugin "
                f"(see docs/{prefix}.md)"
            )
        entry = translators.get(name)
        mapping = cls.load(entry.obj, name)
        return attrs.evolve(mapping, source=f"{name} from {entry.owner.distribution}: {mapping.source}")


def check_fields(table: Mapping[str, Any], valid: tuple[str, ...], source: str, where: str) -> None:
    """Refuse fields of ``table`` not in ``valid`` (a typo must not be ignored silently)."""
    unknown = [k for k in table if k not in valid]
    if unknown:
        raise MappingError(
            f"mapping {source}: {where}: unknown field(s) {', '.join(map(repr, unknown))}; valid: {', '.join(valid)}"
        )


def table(value: Any, source: str, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MappingError(f"mapping {source}: {where} must be a table, got {type(value).__name__} {value!r}")
    return value


def entries(
    data: Mapping[str, Any], section: str, valid: tuple[str, ...], source: str, *, quote: bool = False
) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """``(KEY, where, table)`` for each ``[section.KEY]`` table, its fields checked against ``valid``.

    ``where`` names the entry in messages: ``section.KEY``, or ``section."KEY"`` with ``quote``
    (keys such as ``observation/image`` need the quotes in TOML).
    """
    for key, raw in table(data.get(section, {}), source, section).items():
        where = f'{section}."{key}"' if quote else f"{section}.{key}"
        entry = table(raw, source, where)
        check_fields(entry, valid, source, f"[{where}]")
        yield key, where, entry


def opt_str(value: Any, source: str, where: str) -> str | None:
    """None, or a non-empty string."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise MappingError(f"mapping {source}: {where} must be a non-empty string, got {value!r}")
    return value


def opt_positive_int(value: Any, source: str, where: str) -> int | None:
    """None, or an integer >= 1 (not a bool)."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise MappingError(f"mapping {source}: {where} must be a positive integer, got {value!r}")
    return value


def opt_size2(value: Any, source: str, where: str) -> tuple[int, int] | None:
    """None, or an image size [HEIGHT, WIDTH] of positive integers."""
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    ):
        raise MappingError(f"mapping {source}: {where} must be [HEIGHT, WIDTH] (positive integers), got {value!r}")
    return int(value[0]), int(value[1])


def names(value: Any, source: str, where: str) -> tuple[str, ...]:
    """A non-empty list of distinct non-empty names, in order."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise MappingError(f"mapping {source}: {where} must be a non-empty list of names, got {value!r}")
    if len(set(value)) != len(value):
        raise MappingError(f"mapping {source}: {where} names an entry twice: {value!r}")
    return tuple(value)
