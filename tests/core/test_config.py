"""attrs configs <-> flags: conversion errors name the flag, the expected and the received value."""

from __future__ import annotations

import argparse

import attrs
import pytest

from arena.config import (
    REDACTED,
    add_config_arguments,
    config_from_namespace,
    config_to_dict,
    convert_value,
    flag_name,
    make_config,
)
from arena.errors import ConfigError


@attrs.define
class Sample:
    steps: int = attrs.field(default=3, metadata={"help": "number of steps"})
    rate: float = 0.5
    name: str = "x"
    fast: bool = False
    slow: bool = True
    limit: int | None = None
    ids: tuple[int, ...] = ()
    tags: tuple[str, ...] = attrs.field(factory=lambda: ("a", "b"))


def test_flag_name() -> None:
    assert flag_name("max_steps") == "--max-steps"
    assert flag_name("x") == "--x"


@pytest.mark.parametrize(
    "tp, raw, expected",
    [
        (int, "4", 4),
        (int, 4.0, 4),
        (float, "0.25", 0.25),
        (str, 5, "5"),
        (bool, "yes", True),
        (bool, "Off", False),
        (bool, True, True),
        (int | None, "none", None),
        (int | None, "", None),
        (int | None, "7", 7),
        (tuple[int, ...], "1, 2,3", (1, 2, 3)),
        (tuple[int, ...], "", ()),
        (tuple[str, ...], ["a", "b"], ("a", "b")),
    ],
)
def test_convert_value(tp, raw, expected) -> None:
    got = convert_value("field", tp, raw)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    "tp, raw, message",
    [
        (int, "x", "--max-steps: expected an integer, got 'x'"),
        (int, "1.5", "--max-steps: expected an integer, got '1.5'"),
        (int, 2.5, "--max-steps: expected an integer, got 2.5"),
        (int, True, "--max-steps: expected an integer, got True"),
        (float, "fast", "--max-steps: expected a number, got 'fast'"),
        (bool, "maybe", "--max-steps: expected true or false, got 'maybe'"),
        (int | None, "x", "--max-steps: expected an integer or 'none', got 'x'"),
        (tuple[int, ...], "1,b", "--max-steps: expected an integer, got 'b'"),  # the bad element is named
    ],
)
def test_convert_value_errors_name_flag_expected_and_received(tp, raw, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        convert_value("max_steps", tp, raw)
    assert str(err.value) == message


def test_make_config_converts_and_keeps_defaults() -> None:
    cfg = make_config(Sample, {"steps": "5", "ids": "4,5", "limit": "none"})
    assert cfg == Sample(steps=5, ids=(4, 5), limit=None)
    assert make_config(Sample) == Sample()
    assert make_config(Sample, None) == Sample()


def test_make_config_unknown_options_list_the_known() -> None:
    with pytest.raises(ConfigError) as err:
        make_config(Sample, {"stpes": 1, "zzz": 2})
    msg = str(err.value)
    assert "unknown option(s) stpes, zzz for Sample" in msg
    assert "known: fast, ids, limit, name, rate, slow, steps, tags" in msg


def test_make_config_wraps_constructor_errors() -> None:
    @attrs.define
    class Checked:
        n: int = attrs.field(default=1, validator=attrs.validators.gt(0))

    with pytest.raises(ConfigError, match="Checked:"):
        make_config(Checked, {"n": "0"})


def test_non_attrs_config_is_refused() -> None:
    with pytest.raises(ConfigError, match="is not an attrs class"):
        make_config(dict, {})


def parser_for(cls: type, taken: dict | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="t")
    add_config_arguments(p, cls, "sample options", taken)
    return p


def test_flags_round_trip_through_argparse() -> None:
    p = parser_for(Sample)
    ns = p.parse_args(["--steps", "9", "--fast", "--slow", "false", "--ids", "1,2", "--limit", "3"])
    assert config_from_namespace(Sample, ns) == Sample(steps=9, fast=True, slow=False, ids=(1, 2), limit=3)
    # flags left out keep the field defaults
    assert config_from_namespace(Sample, p.parse_args([])) == Sample()


def test_flag_help_shows_help_type_and_default() -> None:
    text = parser_for(Sample).format_help()
    assert "sample options" in text
    assert "number of steps (an integer; default: 3)" in text
    assert "(a comma-separated list of str; default: a,b)" in text
    assert "(an integer or 'none'; default: None)" in text
    assert "(a comma-separated list of int; default: none)" in text


def test_flag_defined_twice_names_both_owners() -> None:
    taken = {"--steps": "policy 'p' options"}
    with pytest.raises(ConfigError) as err:
        parser_for(Sample, taken)
    assert str(err.value) == "flag --steps is defined twice: by policy 'p' options and by sample options"


def test_bad_flag_value_errors_at_config_time() -> None:
    ns = parser_for(Sample).parse_args(["--steps", "many"])
    with pytest.raises(ConfigError, match="--steps: expected an integer, got 'many'"):
        config_from_namespace(Sample, ns)


def test_config_to_dict() -> None:
    assert config_to_dict(Sample(ids=(1, 2))) == {
        "steps": 3,
        "rate": 0.5,
        "name": "x",
        "fast": False,
        "slow": True,
        "limit": None,
        "ids": [1, 2],
        "tags": ["a", "b"],
    }
    assert config_to_dict(None) == {}
    assert config_to_dict({"not": "attrs"}) == {}


def test_secret_fields_are_redacted_in_config_dicts() -> None:
    @attrs.define
    class Remote:
        host: str = "localhost"
        token: str | None = attrs.field(default=None, metadata={"secret": True})

    assert config_to_dict(Remote(token="s3cr3t")) == {"host": "localhost", "token": REDACTED}
    assert config_to_dict(Remote()) == {"host": "localhost", "token": None}  # nothing to hide
