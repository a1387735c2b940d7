"""Exceptions shared by the core and plugins, so callers can catch by kind."""

from __future__ import annotations


class ArenaError(Exception):
    """Base of every error arena raises on purpose (the CLI prints these without a traceback)."""


class ContractError(ArenaError):
    """Data does not match the canonical contract (wrong shape, missing group, ...)."""


class ConfigError(ArenaError):
    """A configuration value is invalid; the message names the field, expected and received value."""


class RegistryError(ArenaError):
    """Unknown or duplicate name in a registry."""


class PluginError(ArenaError):
    """A plugin could not be loaded or misbehaves."""


class EnvError(ArenaError):
    """An env failed; the evaluator records the episode as failed and goes on."""


class PolicyError(ArenaError):
    """A policy failed in a way the run cannot recover from."""
