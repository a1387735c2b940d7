"""Plugin discovery and loading (pluggy, entry-point group ``arena``).

Built-ins are ordinary plugins registered through the same PluginManager as
third-party ones (the pytest/tox model). Entry points are discovered and
imported once per process. A plugin that fails to import, or implements a
hook that does not exist (a typo caught by ``check_pending``), is reported by
name with its error and left out; the others still load.

Selection: ``ARENA_PLUGINS=a,b`` restricts which ENTRY-POINT plugins load
(built-ins always load unless blocked); ``--plugin no:NAME`` blocks one
plugin, built-in or not.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from types import ModuleType
from typing import Any

import attrs
import importlib_metadata
import pluggy

import arena
from arena import hookspecs
from arena.errors import ArenaError, PluginError
from arena.registry import Owner, Registry

log = logging.getLogger(__name__)

__all__ = [
    "PluginInfo",
    "Plugins",
    "load_plugins",
    "current_plugins",
    "using_plugins",
    "BUILTINS",
    "ENTRY_POINT_GROUP",
]

ENTRY_POINT_GROUP = "arena"

#: built-in plugin name -> module
BUILTINS: dict[str, str] = {
    "policies": "arena.builtins.policies",
    "schedulers": "arena.builtins.schedulers",
    "debug": "arena.builtins.debug_env",
    "trackers": "arena.builtins.trackers",
}

REGISTRY_HOOKS = {
    "policies": "arena_register_policies",
    "envs": "arena_register_envs",
    "translators": "arena_register_translators",
    "schedulers": "arena_register_schedulers",
}
_KINDS = {"policies": "policy", "envs": "env family", "translators": "translator", "schedulers": "scheduler"}


@attrs.define
class PluginInfo:
    """What `arena plugins` shows for one plugin."""

    name: str
    distribution: str
    version: str
    module: str
    builtin: bool
    hooks: list[str] = attrs.field(factory=list)
    error: str | None = None

    @property
    def owner(self) -> Owner:
        return Owner(self.name, self.distribution, self.version)

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


_entry_point_cache: list[tuple[Any, ModuleType | None, str | None]] | None = None


def _entry_points() -> list[tuple[Any, ModuleType | None, str | None]]:
    """(entry point, loaded module or None, error) for every ``arena`` entry point, loaded once."""
    global _entry_point_cache
    if _entry_point_cache is None:
        loaded = []
        seen: set[str] = set()
        for ep in importlib_metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in seen:  # the same distribution visible twice on sys.path
                continue
            seen.add(ep.name)
            loaded.append((ep, None, None))
        _entry_point_cache = loaded
    return _entry_point_cache


def _load_entry_point(index: int) -> tuple[ModuleType | None, str | None]:
    """Import entry point ``index`` once; remember the module or the error."""
    assert _entry_point_cache is not None
    ep, module, error = _entry_point_cache[index]
    if module is None and error is None:
        try:
            module = ep.load()
        except Exception as exc:  # noqa: BLE001 - any import failure must be reported, not raised
            error = f"{type(exc).__name__}: {exc}"
            log.warning("plugin %r (%s) failed to load: %s", ep.name, ep.value, error)
        _entry_point_cache[index] = (ep, module, error)
    return module, error


def reset_entry_point_cache() -> None:
    """Forget discovered entry points (tests that install a plugin at run time call this)."""
    global _entry_point_cache
    _entry_point_cache = None
    importlib.invalidate_caches()


def _parse_only(value: str | None) -> set[str] | None:
    if value is None or not value.strip():
        return None
    return {v.strip() for v in value.split(",") if v.strip()}


def parse_plugin_options(options: Iterable[str]) -> set[str]:
    """``["no:gr00t", ...]`` -> names to block; anything else is an error naming the flag."""
    blocked = set()
    for opt in options:
        if not opt.startswith("no:") or len(opt) <= 3:
            raise PluginError(f"--plugin: expected 'no:NAME' to block a plugin, got {opt!r}")
        blocked.add(opt[3:])
    return blocked


class Plugins:
    """The loaded plugins and the registries they filled."""

    def __init__(self, blocked: Iterable[str] = (), only: Iterable[str] | None = None) -> None:
        self.pm = pluggy.PluginManager("arena")
        self.pm.add_hookspecs(hookspecs)
        self.infos: list[PluginInfo] = []
        self.blocked = set(blocked)
        self.only = set(only) if only is not None else _parse_only(os.environ.get("ARENA_PLUGINS"))
        self._registries: dict[str, Registry] = {}
        self._load()

    # -- loading ---------------------------------------------------------------------------
    def _load(self) -> None:
        core_version = arena.__version__
        for name, modname in BUILTINS.items():
            if name in self.blocked:
                continue
            info = PluginInfo(name, "arena-core", core_version, modname, builtin=True)
            try:
                module = importlib.import_module(modname)
            except Exception as exc:  # noqa: BLE001
                info.error = f"{type(exc).__name__}: {exc}"
                self.infos.append(info)
                continue
            self._register(module, info)
        for index, (ep, _, _) in enumerate(_entry_points()):
            if ep.name in self.blocked or (self.only is not None and ep.name not in self.only):
                continue
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                name=ep.name,
                distribution=dist.name if dist is not None else "<unknown>",
                version=dist.version if dist is not None else "",
                module=ep.value,
                builtin=False,
            )
            module, error = _load_entry_point(index)
            if error is not None:
                info.error = error
                self.infos.append(info)
                continue
            self._register(module, info)
        if self.only:
            missing = self.only - {i.name for i in self.infos}
            for name in sorted(missing):
                log.warning("ARENA_PLUGINS names %r, but no installed plugin has that name", name)

    def _register(self, module: Any, info: PluginInfo) -> None:
        if self.pm.is_registered(module) or self.pm.has_plugin(info.name):
            info.error = "already registered under another name"
            self.infos.append(info)
            return
        try:
            self.pm.register(module, name=info.name)
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(module, name=info.name)
            info.error = f"invalid hooks: {exc}"
            log.warning("plugin %r rejected: %s", info.name, info.error)
        except ValueError as exc:
            info.error = str(exc)
        else:
            info.hooks = sorted(impl.name for impl in self._hookimpls_of(info.name))
        self.infos.append(info)

    def _hookimpls_of(self, plugin_name: str) -> list[Any]:
        plugin = self.pm.get_plugin(plugin_name)
        out = []
        for caller in self.pm.get_hookcallers(plugin) or []:
            out.append(caller)
        return out

    # -- querying ----------------------------------------------------------------------------
    def info(self, plugin_name: str) -> PluginInfo:
        for i in self.infos:
            if i.name == plugin_name:
                return i
        raise PluginError(f"no plugin named {plugin_name!r}")

    def register(self, plugin: Any, name: str | None = None) -> PluginInfo:
        """Register an in-process plugin object or module (tests, notebooks, training loops).

        It is listed by `arena plugins` like an installed one, with the
        distribution ``<in-process>``. Register before the registries are used.
        """
        if self._registries:
            raise PluginError("register plugins before the first registry is used")
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        info = PluginInfo(name, "<in-process>", "", getattr(plugin, "__module__", str(name)), builtin=False)
        self._register(plugin, info)
        if info.error is not None:
            raise PluginError(f"plugin {name!r} rejected: {info.error}")
        return info

    def _owner(self, plugin_name: str) -> Owner:
        """Who registered through plugin ``plugin_name``; plugins put straight on ``pm`` have no PluginInfo."""
        for i in self.infos:
            if i.name == plugin_name:
                return i.owner
        return Owner(plugin_name, "<unknown>", "")

    @property
    def failed(self) -> list[PluginInfo]:
        return [i for i in self.infos if i.error is not None]

    def registry(self, kind: str) -> Registry:
        """The registry ``kind`` (policies, envs, translators, schedulers), filled on first use."""
        if kind not in self._registries:
            registry = Registry(_KINDS[kind])
            hook = getattr(self.pm.hook, REGISTRY_HOOKS[kind])
            # Call each implementation on its own so every registration knows its owner.
            for impl in reversed(hook.get_hookimpls()):
                owner = self._owner(impl.plugin_name)
                with registry.owned_by(owner):
                    try:
                        impl.function(**{a: registry for a in impl.argnames})
                    except ArenaError:
                        raise
                    except Exception as exc:  # noqa: BLE001
                        raise PluginError(
                            f"plugin {owner.plugin!r} ({owner.distribution}) failed in {hook.name}: "
                            f"{type(exc).__name__}: {exc}"
                        ) from exc
            self._registries[kind] = registry
        return self._registries[kind]

    @property
    def policies(self) -> Registry:
        return self.registry("policies")

    @property
    def envs(self) -> Registry:
        return self.registry("envs")

    @property
    def translators(self) -> Registry:
        return self.registry("translators")

    @property
    def schedulers(self) -> Registry:
        return self.registry("schedulers")

    def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call a lifecycle hook; an observer that raises is logged, never fatal to the run."""
        hook = getattr(self.pm.hook, hook_name)
        for impl in reversed(hook.get_hookimpls()):
            try:
                impl.function(**{a: kwargs[a] for a in impl.argnames})
            except Exception:  # noqa: BLE001
                log.exception("observer %r failed in %s; the run goes on", impl.plugin_name, hook_name)

    def versions(self) -> dict[str, str]:
        """Versions of python, key libraries and every loaded plugin distribution (for results)."""
        out = {"python": sys.version.split()[0], "arena-core": arena.__version__}
        for name in ("numpy", "torch", "pluggy"):
            try:
                out[name] = importlib_metadata.version(name)
            except importlib_metadata.PackageNotFoundError:
                pass
        for i in self.infos:
            if not i.builtin and i.error is None:
                out[i.distribution] = i.version
        return out


_current: contextvars.ContextVar[Plugins | None] = contextvars.ContextVar("arena_plugins", default=None)


@contextlib.contextmanager
def using_plugins(plugins: Plugins) -> Iterator[Plugins]:
    """Make ``plugins`` what :func:`current_plugins` returns inside the ``with`` block (a run, a check, a server)."""
    token = _current.set(plugins)
    try:
        yield plugins
    finally:
        _current.reset(token)


def current_plugins() -> Plugins:
    """The plugins of the run being assembled (honouring --plugin and in-process registrations).

    A policy looks up translators here instead of loading plugins again;
    outside a run it falls back to a fresh :func:`load_plugins`.
    """
    plugins = _current.get()
    return plugins if plugins is not None else load_plugins()


def load_plugins(blocked: Iterable[str] = (), only: Iterable[str] | None = None) -> Plugins:
    """Load built-ins and installed plugins (see the module docstring for selection)."""
    return Plugins(blocked=blocked, only=only)
