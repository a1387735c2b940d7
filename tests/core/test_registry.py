"""Registries: names, owners, duplicate and unknown-name errors."""

from __future__ import annotations

import attrs
import pytest

from arena.errors import RegistryError
from arena.registry import Owner, Registry


class Thing:
    """A thing with a docstring.

    More text that is not the help line.
    """

    @attrs.define
    class Config:
        size: int = 1


def test_register_and_get() -> None:
    reg = Registry("policy")
    reg.register("thing", Thing)
    entry = reg.get("thing")
    assert entry.obj is Thing
    assert entry.help == "A thing with a docstring."  # the first docstring line
    assert entry.config is Thing.Config  # defaults to obj.Config
    assert "thing" in reg and "other" not in reg


def test_explicit_help_config_and_meta() -> None:
    @attrs.define
    class Other:
        x: int = 0

    reg = Registry("policy")
    reg.register("thing", Thing, help="explicit", config=Other, tag="t")
    e = reg.get("thing")
    assert (e.help, e.config, e.meta) == ("explicit", Other, {"tag": "t"})


def test_object_without_doc_or_config() -> None:
    reg = Registry("translator")
    reg.register("x", 42)
    assert reg.get("x").config is None


def test_names_are_sorted() -> None:
    reg = Registry("policy")
    for n in ("zeta", "alpha", "mid"):
        reg.register(n, object())
    assert reg.names() == ["alpha", "mid", "zeta"]
    assert [e.name for e in reg.entries()] == ["alpha", "mid", "zeta"]


@pytest.mark.parametrize("name", ["", "a/b", "a b", 3])
def test_invalid_names_are_refused(name) -> None:
    with pytest.raises(RegistryError, match="policy name must be a non-empty string"):
        Registry("policy").register(name, object())


def test_unknown_name_lists_the_known_ones() -> None:
    reg = Registry("env family")
    reg.register("b", object())
    reg.register("a", object())
    with pytest.raises(RegistryError) as err:
        reg.get("c")
    assert str(err.value) == "unknown env family 'c'; known: a, b"
    with pytest.raises(RegistryError, match="known: none"):
        Registry("policy").get("x")


def test_duplicate_names_both_owners() -> None:
    reg = Registry("policy")
    with reg.owned_by(Owner("first", "arena-first", "1.2")):
        reg.register("dup", object())
    with reg.owned_by(Owner("second", "arena-second", "3.4")):
        with pytest.raises(RegistryError) as err:
            reg.register("dup", object())
    msg = str(err.value)
    assert "policy 'dup' is registered twice" in msg
    assert "arena-first 1.2 (plugin 'first')" in msg
    assert "arena-second 3.4 (plugin 'second')" in msg
    assert "--plugin no:PLUGIN" in msg


def test_owned_by_restores_the_previous_owner() -> None:
    reg = Registry("policy")
    with reg.owned_by(Owner("p", "dist", "1")):
        reg.register("inside", object())
    reg.register("outside", object())
    assert reg.get("inside").owner == Owner("p", "dist", "1")
    assert reg.get("outside").owner.plugin == "<direct>"


def test_builtin_registrations_know_their_owner(plugins) -> None:
    entry = plugins.policies.get("random")
    assert entry.owner.plugin == "policies"
    assert entry.owner.distribution == "arena-core"
    assert plugins.envs.get("debug").owner.plugin == "debug"
    assert plugins.policies.names() == ["random", "zero"]
    assert plugins.envs.names() == ["debug"]
    assert plugins.translators.names() == []
