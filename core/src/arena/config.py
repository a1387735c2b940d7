"""attrs config classes <-> command-line flags and plain dicts.

A family's config fields become flags of ``arena eval`` (``max_steps`` ->
``--max-steps``); the field's ``metadata["help"]`` is the flag's help. Values
are converted by the field's type with errors that name the flag, the
expected and the received value. A field with ``metadata["secret"]`` (an API
token) is written as ``"<redacted>"`` by :func:`config_to_dict`, so it never
reaches config.json or summary.json.
"""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Mapping
from typing import Any

import attr
import attrs

from arena.errors import ConfigError

__all__ = ["flag_name", "add_config_arguments", "config_from_namespace", "make_config", "config_to_dict", "REDACTED"]

_MISSING = object()

#: what config_to_dict writes for a field marked ``metadata={"secret": True}``
REDACTED = "<redacted>"


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def _fields(cls: type) -> tuple[attrs.Attribute, ...]:
    if not attrs.has(cls):
        raise ConfigError(f"config class {cls!r} is not an attrs class")
    attrs.resolve_types(cls)
    return attrs.fields(cls)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _describe(tp: Any) -> str:
    base, optional = _unwrap_optional(tp)
    if typing.get_origin(base) is tuple:
        inner = typing.get_args(base)[0]
        text = f"a comma-separated list of {getattr(inner, '__name__', inner)}"
    else:
        text = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
            base, getattr(base, "__name__", str(base))
        )
    return text + (" or 'none'" if optional else "")


def convert_value(field: str, tp: Any, raw: Any) -> Any:
    """``raw`` (usually a string from the command line) as type ``tp``; ConfigError otherwise."""
    base, optional = _unwrap_optional(tp)
    if optional and (raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none", "null"))):
        return None
    try:
        if typing.get_origin(base) is tuple:
            inner = typing.get_args(base)[0]
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            return tuple(convert_value(field, inner, x.strip() if isinstance(x, str) else x) for x in items if x != "")
        if base is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if base is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(raw)
            return int(raw)
        if base is float:
            return float(raw)
        if base is str:
            return str(raw)
        if base is Any:
            return raw
        return base(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{flag_name(field)}: expected {_describe(tp)}, got {raw!r}") from None


def add_config_arguments(
    parser: argparse.ArgumentParser, cls: type, title: str, taken: dict[str, str] | None = None
) -> None:
    """Add one flag per field of ``cls`` to a group titled ``title``.

    ``taken`` maps flags already used to their owner, so two configs that want
    the same flag produce an error naming both instead of argparse's traceback.
    """
    fields = _fields(cls)
    if not fields:
        return
    group = parser.add_argument_group(title)
    for f in fields:
        flag = flag_name(f.name)
        if taken is not None:
            if flag in taken:
                raise ConfigError(f"flag {flag} is defined twice: by {taken[flag]} and by {title}")
            taken[flag] = title
        default = f.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()  # type: ignore[union-attr]
        help_text = f.metadata.get("help", "")
        shown = (",".join(map(str, default)) or "none") if isinstance(default, tuple) else default
        help_text = f"{help_text} ({_describe(f.type)}; default: {shown})".strip()
        base, _ = _unwrap_optional(f.type)
        if base is bool and default is False:
            group.add_argument(
                flag, dest=f.name, nargs="?", const="true", default=_MISSING, metavar="BOOL", help=help_text
            )
        else:
            group.add_argument(flag, dest=f.name, default=_MISSING, metavar=f.name.upper(), help=help_text)


def config_from_namespace(cls: type, namespace: argparse.Namespace) -> Any:
    """Build ``cls`` from the parsed flags (unset flags keep the field defaults)."""
    values = {
        f.name: getattr(namespace, f.name) for f in _fields(cls) if getattr(namespace, f.name, _MISSING) is not _MISSING
    }
    return make_config(cls, values)


def make_config(cls: type, values: Mapping[str, Any] | None = None) -> Any:
    """``cls(**values)`` with type conversion and errors that name the field."""
    values = dict(values or {})
    fields = {f.name: f for f in _fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields)) or "none"
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} for {cls.__name__}; known: {known}")
    kwargs = {name: convert_value(name, fields[name].type, v) for name, v in values.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{cls.__name__}: {exc}") from None


def config_to_dict(config: Any, identity: bool = False) -> dict[str, Any]:
    """JSON-ready dict of a config instance (tuples become lists; secret fields redacted).

    With ``identity`` only the fields that decide which episodes run and how
    they turn out: fields marked ``metadata={"identity": False}`` (a server's
    address, timeouts) are left out, so ``--resume`` may change them.
    """
    if config is None or not attrs.has(type(config)):
        return {}
    # attr.asdict (not attrs.asdict, which keeps tuples) turns tuples into lists, as JSON stores them
    out = attr.asdict(config, retain_collection_types=False)
    for f in attrs.fields(type(config)):
        if identity and f.metadata.get("identity", True) is False:
            del out[f.name]
        elif f.metadata.get("secret") and out.get(f.name) is not None:
            out[f.name] = REDACTED
    return out
