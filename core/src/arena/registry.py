"""Named registries filled by the ``arena_register_*`` hooks.

Every entry remembers which plugin and distribution registered it, so that a
name registered twice is an error naming both distributions, and so that
`arena plugins` can say who provides what.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import attrs

from arena.errors import RegistryError

__all__ = ["Entry", "Owner", "Registry"]


@attrs.frozen
class Owner:
    """The plugin a registration came from."""

    plugin: str
    distribution: str
    version: str

    def __str__(self) -> str:
        return f"{self.distribution} {self.version} (plugin {self.plugin!r})"


@attrs.frozen
class Entry:
    """One registered thing: a policy class, env family, translator or scheduler class."""

    name: str
    obj: Any
    help: str
    owner: Owner
    config: type | None = None
    meta: dict[str, Any] = attrs.field(factory=dict)


class Registry:
    """Name -> :class:`Entry`, for one kind of thing (``policy``, ``env``, ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        self._owner = Owner("<direct>", "<unknown>", "")

    @contextlib.contextmanager
    def owned_by(self, owner: Owner) -> Iterator[None]:
        previous, self._owner = self._owner, owner
        try:
            yield
        finally:
            self._owner = previous

    def register(self, name: str, obj: Any, *, help: str = "", config: type | None = None, **meta: Any) -> None:
        """Register ``obj`` under ``name``.

        ``config`` defaults to ``obj.Config`` when the object has one (policy
        and scheduler classes, env families).
        """
        if not isinstance(name, str) or not name or "/" in name or " " in name:
            raise RegistryError(f"{self.kind} name must be a non-empty string without '/' or spaces, got {name!r}")
        if name in self._entries:
            first = self._entries[name].owner
            raise RegistryError(
                f"{self.kind} {name!r} is registered twice: by {first} and by {self._owner}; "
                f"uninstall one or block it with --plugin no:PLUGIN"
            )
        if config is None:
            config = getattr(obj, "Config", None)
        doc = help or (getattr(obj, "__doc__", None) or "").strip().splitlines()[0:1]
        if isinstance(doc, list):
            doc = doc[0] if doc else ""
        self._entries[name] = Entry(name=name, obj=obj, help=doc, owner=self._owner, config=config, meta=dict(meta))

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise RegistryError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]
