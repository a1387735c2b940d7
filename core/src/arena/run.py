"""Everything one evaluation is made of, resolved from names: the shared path of CLI and Python API."""

from __future__ import annotations

import argparse
import datetime as _dt
import difflib
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from arena.compat import check_compat  # noqa: F401 - re-exported: callers import it from here
from arena.config import add_config_arguments, make_config
from arena.contract import EnvSpec
from arena.env import VectorEnv
from arena.errors import ConfigError, RegistryError
from arena.plugins import Plugins, using_plugins
from arena.policy import Policy
from arena.registry import Entry
from arena.runinfo import RunInfo  # noqa: F401 - re-exported for callers of the old location

log = logging.getLogger(__name__)

__all__ = [
    "RunInfo",
    "resolve_env",
    "add_family_options",
    "build_config",
    "default_run_dir",
    "make_policy",
    "check_compat",
]

#: config keys that do not change which episodes run or their outcome (not compared on --resume,
#: not stored in config.json; summary.json's config has them)
NON_IDENTITY_KEYS = ("num_envs", "videos", "video_camera", "tracker", "stages", "episode_retries", "backend")


_SHOWN_IDS = 12


def _valid_ids(family: str, sub: str, ids: list[str]) -> str:
    """The family's ids, or for a long list the closest ones and the shortest ones (suites first)."""
    if len(ids) <= _SHOWN_IDS:
        return f"valid ids of family {family!r}: " + ", ".join(f"{family}/{i}" for i in ids)
    close = difflib.get_close_matches(sub, ids, n=5, cutoff=0.6)
    head = sorted(ids, key=lambda i: (i.count("/"), ids.index(i)))[: _SHOWN_IDS - len(close)]
    hint = f"did you mean {', '.join(f'{family}/{i}' for i in close)}? " if close else ""
    return f"{hint}{len(ids)} ids in family {family!r}, e.g. " + ", ".join(f"{family}/{i}" for i in head) + ", ..."


def resolve_env(plugins: Plugins, env_id: str) -> tuple[Entry, str]:
    """``"metaworld/pick-place-v3"`` -> (family entry, ``"pick-place-v3"``); clear errors listing valid ids."""
    if "/" not in env_id:
        families = ", ".join(f"{n}/..." for n in plugins.envs.names()) or "none installed"
        raise RegistryError(f"--env: expected FAMILY/ID (e.g. debug/reach), got {env_id!r}; env families: {families}")
    family, _, sub = env_id.partition("/")
    entry = plugins.envs.get(family)
    ids = entry.obj.ids()
    if sub not in ids:
        raise RegistryError(f"--env: unknown env id {env_id!r}; {_valid_ids(family, sub, ids)}")
    return entry, sub


def preparse_selection(
    argv: Sequence[str], default_log_level: str, log_format: str, command: bool = False
) -> argparse.Namespace:
    """Phase 1 of parsing a command line whose flags depend on the selected families.

    Finds ``--policy``, ``--env``, ``--scheduler``, ``--plugin`` and
    ``--log-level`` (and the subcommand) without failing on family flags or
    ``--help``, and sets up logging; phase 2 adds the families' flags.
    """
    pre = argparse.ArgumentParser(add_help=False)
    if command:
        pre.add_argument("command", nargs="?")
    for flag in ("--policy", "--env", "--scheduler", "--log-level"):
        pre.add_argument(flag)
    pre.add_argument("--plugin", action="append", default=[])
    known, _ = pre.parse_known_args(list(argv))
    level = (known.log_level or default_log_level).upper()
    logging.basicConfig(level=getattr(logging, level, logging.WARNING), format=log_format)
    return known


def add_family_options(
    parser: argparse.ArgumentParser,
    plugins: Plugins,
    policy: str | None = None,
    env: str | None = None,
    scheduler: str | None = None,
) -> dict[str, type]:
    """Add the config flags of the selected policy, env family and scheduler; return their classes.

    A flag wanted by two of them (or clashing with the command's own) is an
    error naming both owners.
    """
    taken = {a: parser.prog for action in parser._actions for a in action.option_strings}  # noqa: SLF001
    classes: dict[str, type] = {}
    selected: list[tuple[str, str, Entry]] = []
    if policy:
        selected.append(("policy", f"policy {policy!r} options", plugins.policies.get(policy)))
    if env:
        entry, _ = resolve_env(plugins, env)
        selected.append(("env", f"env {entry.name!r} options", entry))
    if scheduler:
        selected.append(("scheduler", f"scheduler {scheduler!r} options", plugins.schedulers.get(scheduler)))
    for kind, title, entry in selected:
        if entry.config is not None:
            add_config_arguments(parser, entry.config, title, taken)
            classes[kind] = entry.config
    return classes


def build_config(cls: type | None, values: Any) -> Any:
    """A config instance from an instance, a mapping or None (defaults)."""
    if cls is None:
        return None
    if values is None or isinstance(values, Mapping):
        return make_config(cls, values)
    if isinstance(values, cls):
        return values
    raise ConfigError(f"expected a {cls.__name__} or a mapping of its fields, got {type(values).__name__}")


def default_run_dir(policy: str, env_id: str, root: str | Path = "runs") -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return Path(root) / f"{stamp}-{policy}-{env_id.replace('/', '_')}"


PolicyFactory = Callable[[EnvSpec, int], Policy]


def make_policy(
    plugins: Plugins, policy: str | type | PolicyFactory, config_values: Any, spec: EnvSpec, num_envs: int
) -> tuple[Policy, str, Any]:
    """Build the policy from a family name, a Policy subclass, or a factory(env_spec, num_envs)."""
    with using_plugins(plugins):
        return _make_policy(plugins, policy, config_values, spec, num_envs)


def _make_policy(
    plugins: Plugins, policy: str | type | PolicyFactory, config_values: Any, spec: EnvSpec, num_envs: int
) -> tuple[Policy, str, Any]:
    if isinstance(policy, str):
        entry = plugins.policies.get(policy)
        config = build_config(entry.config, config_values)
        return entry.obj(config, spec, num_envs), policy, config
    if isinstance(policy, type) and issubclass(policy, Policy):
        config = build_config(getattr(policy, "Config", None), config_values)
        return policy(config, spec, num_envs), policy.__name__, config
    if callable(policy):
        made = policy(spec, num_envs)
        if not isinstance(made, Policy):
            raise ConfigError(f"policy factory returned {type(made).__name__}, expected an arena.Policy")
        return made, type(made).__name__, getattr(made, "config", None)
    raise ConfigError(f"policy: expected a family name, a Policy subclass or a factory, got {policy!r}")


def make_env(plugins: Plugins, env_id: str, config_values: Any, num_envs: int) -> tuple[VectorEnv, Any]:
    entry, sub = resolve_env(plugins, env_id)
    config = build_config(entry.config, config_values)
    with using_plugins(plugins):
        return entry.obj.make(sub, config, num_envs), config
