"""Plugin discovery through REAL entry points (fake installed distributions on sys.path),
selection, blocking, failure reporting, duplicate names and lifecycle hooks."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
from arena_core_testlib import MISSPELLED, Factory, policy_plugin_source

import arena
from arena.errors import PluginError, RegistryError
from arena.plugins import BUILTINS, load_plugins, parse_plugin_options


def counting(counter: Path, body: str = "") -> str:
    """Module source that appends one 'x' to ``counter`` each time it is imported, then runs ``body``."""
    return f"""
import pathlib
_p = pathlib.Path({str(counter)!r})
_p.write_text((_p.read_text() if _p.exists() else "") + "x")
{body}
"""


def test_builtins_are_plugins_of_arena_core(plugins) -> None:
    infos = {i.name: i for i in plugins.infos}
    assert {"policies", "schedulers", "debug"} <= set(infos)
    assert list(infos) == list(BUILTINS)  # every built-in loaded, in order, before any entry point
    for info in infos.values():
        assert info.builtin and info.error is None
        assert (info.distribution, info.version) == ("arena-core", arena.__version__)
    assert infos["debug"].hooks == ["arena_register_envs"]
    assert infos["policies"].hooks == ["arena_register_policies"]
    assert infos["schedulers"].module == "arena.builtins.schedulers"
    assert plugins.failed == []


def test_third_party_plugin_loads_through_its_entry_point(fake_dists, monkeypatch) -> None:
    module = fake_dists.add("arena-fake", policy_plugin_source("fakepol"), plugin="fake", version="2.5")
    monkeypatch.setenv("ARENA_PLUGINS", "fake")
    plugins = load_plugins()
    info = plugins.info("fake")
    assert (info.distribution, info.version, info.module, info.builtin) == ("arena-fake", "2.5", module, False)
    assert info.hooks == ["arena_register_policies"]
    assert info.error is None
    entry = plugins.policies.get("fakepol")
    assert (entry.owner.plugin, entry.owner.distribution, entry.owner.version) == ("fake", "arena-fake", "2.5")
    assert entry.help == "fakepol: holds still"
    assert plugins.versions()["arena-fake"] == "2.5"
    # and it evaluates like any other family
    summary = arena.evaluate("fakepol", "debug/reach", episodes=2, max_steps=3, write=False, plugins=plugins)
    assert summary.overall.episodes == 2


def test_plugin_failing_on_import_is_reported_and_others_load(fake_dists, monkeypatch, caplog) -> None:
    fake_dists.add("arena-good", policy_plugin_source("goodpol"), plugin="good")
    fake_dists.add("arena-broken", "raise RuntimeError('boom at import')\n", plugin="broken")
    monkeypatch.setenv("ARENA_PLUGINS", "good,broken")
    with caplog.at_level(logging.WARNING, logger="arena.plugins"):
        plugins = load_plugins()
    broken = plugins.info("broken")
    assert broken.error == "RuntimeError: boom at import"
    assert broken.distribution == "arena-broken"
    assert [i.name for i in plugins.failed] == ["broken"]
    assert "goodpol" in plugins.policies
    assert plugins.info("good").error is None
    assert "'broken'" in caplog.text and "boom at import" in caplog.text
    assert "arena-broken" not in plugins.versions()


def test_misspelled_hook_rejects_the_plugin(fake_dists, monkeypatch) -> None:
    fake_dists.add("arena-typo", MISSPELLED, plugin="typo")
    fake_dists.add("arena-good", policy_plugin_source("goodpol"), plugin="good")
    monkeypatch.setenv("ARENA_PLUGINS", "typo,good")
    plugins = load_plugins()
    info = plugins.info("typo")
    assert info.error is not None and info.error.startswith("invalid hooks:")
    assert "arena_register_policys" in info.error
    assert not plugins.pm.has_plugin("typo")  # nothing of it stays registered
    assert "typo-env" not in plugins.envs
    assert "goodpol" in plugins.policies


def test_hook_with_wrong_arguments_rejects_the_plugin(fake_dists, monkeypatch) -> None:
    source = "import arena\n@arena.hookimpl\ndef arena_register_policies(reg, extra):\n    pass\n"
    fake_dists.add("arena-args", source, plugin="args")
    monkeypatch.setenv("ARENA_PLUGINS", "args")
    plugins = load_plugins()
    assert plugins.info("args").error.startswith("invalid hooks:")
    assert plugins.policies.names() == ["random", "zero"]


def test_arena_plugins_restricts_entry_point_plugins(fake_dists, monkeypatch, tmp_path) -> None:
    fake_dists.add("arena-a", counting(tmp_path / "a.count", policy_plugin_source("apol")), plugin="a")
    mod_b = fake_dists.add("arena-b", counting(tmp_path / "b.count", policy_plugin_source("bpol")), plugin="b")
    monkeypatch.setenv("ARENA_PLUGINS", "a")
    plugins = load_plugins()
    assert [i.name for i in plugins.infos] == [*BUILTINS, "a"]  # built-ins always load
    assert plugins.policies.names() == ["apol", "random", "zero"]
    assert not (tmp_path / "b.count").exists() and mod_b not in sys.modules  # b was never imported
    both = load_plugins(only=["a", "b"])  # an explicit selection wins over the variable
    assert {"apol", "bpol"} <= set(both.policies.names())
    monkeypatch.delenv("ARENA_PLUGINS")
    everything = load_plugins()
    assert {"a", "b"} <= {i.name for i in everything.infos}


def test_blocking_plugins(fake_dists, monkeypatch, tmp_path) -> None:
    mod = fake_dists.add("arena-a", counting(tmp_path / "a.count", policy_plugin_source("apol")), plugin="a")
    monkeypatch.setenv("ARENA_PLUGINS", "a")
    plugins = load_plugins(blocked=parse_plugin_options(["no:a", "no:debug"]))
    assert [i.name for i in plugins.infos] == [n for n in BUILTINS if n != "debug"]
    assert plugins.envs.names() == []
    assert not (tmp_path / "a.count").exists() and mod not in sys.modules  # a blocked plugin is not imported
    with pytest.raises(RegistryError, match="unknown env family 'debug'; known: none"):
        plugins.envs.get("debug")


@pytest.mark.parametrize("option", ["debug", "no:", "yes:debug"])
def test_plugin_option_must_be_no_name(option: str) -> None:
    with pytest.raises(PluginError, match=f"--plugin: expected 'no:NAME' to block a plugin, got {option!r}"):
        parse_plugin_options([option])


def test_same_policy_name_from_two_distributions_names_both(fake_dists, monkeypatch) -> None:
    fake_dists.add("arena-twin-a", policy_plugin_source("twin"), plugin="twin-a", version="1.0")
    fake_dists.add("arena-twin-b", policy_plugin_source("twin"), plugin="twin-b", version="2.0")
    monkeypatch.setenv("ARENA_PLUGINS", "twin-a,twin-b")
    plugins = load_plugins()
    with pytest.raises(RegistryError) as err:
        plugins.registry("policies")
    msg = str(err.value)
    assert "policy 'twin' is registered twice" in msg
    assert "arena-twin-a 1.0 (plugin 'twin-a')" in msg
    assert "arena-twin-b 2.0 (plugin 'twin-b')" in msg
    # blocking one of them resolves it
    assert "twin" in load_plugins(blocked={"twin-b"}).policies


def test_plugin_reusing_a_builtin_name_names_arena_core(fake_dists, monkeypatch) -> None:
    fake_dists.add("arena-clash", policy_plugin_source("random"), plugin="clash", version="0.3")
    monkeypatch.setenv("ARENA_PLUGINS", "clash")
    with pytest.raises(RegistryError) as err:
        load_plugins().registry("policies")
    assert "arena-core" in str(err.value) and "arena-clash 0.3 (plugin 'clash')" in str(err.value)


def test_entry_points_are_imported_once_per_process(fake_dists, monkeypatch, tmp_path) -> None:
    good = fake_dists.add(
        "arena-good", counting(tmp_path / "good.count", policy_plugin_source("goodpol")), plugin="good"
    )
    fake_dists.add("arena-bad", counting(tmp_path / "bad.count", "raise ImportError('nope')"), plugin="bad")
    monkeypatch.setenv("ARENA_PLUGINS", "good,bad")
    first = load_plugins()
    del sys.modules[good]  # a second import would now run the module again
    second = load_plugins()
    assert (tmp_path / "good.count").read_text() == "x"
    assert (tmp_path / "bad.count").read_text() == "x"  # the failed import is remembered, not retried
    for plugins in (first, second):
        assert plugins.info("bad").error == "ImportError: nope"
        assert "goodpol" in plugins.policies


def test_plugin_raising_in_a_register_hook_is_named(fake_dists, monkeypatch) -> None:
    source = "import arena\n@arena.hookimpl\ndef arena_register_envs(registry):\n    raise ValueError('no simulator')\n"
    fake_dists.add("arena-nosim", source, plugin="nosim", version="0.9")
    monkeypatch.setenv("ARENA_PLUGINS", "nosim")
    with pytest.raises(PluginError) as err:
        load_plugins().registry("envs")
    assert str(err.value) == "plugin 'nosim' (arena-nosim) failed in arena_register_envs: ValueError: no simulator"


def test_plugin_object_registered_on_the_manager(plugins) -> None:
    class Extra:
        @arena.hookimpl
        def arena_register_policies(self, registry):
            registry.register("extra", Factory)

    plugins.pm.register(Extra(), name="extra-plugin")
    entry = plugins.policies.get("extra")
    assert entry.owner.plugin == "extra-plugin"
    assert "random" in plugins.policies


# -- lifecycle hooks -----------------------------------------------------------------------------------


class Observer:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    @arena.hookimpl
    def arena_run_start(self, run):
        self.calls.append(("start", run))

    @arena.hookimpl
    def arena_episode_end(self, run, record):
        self.calls.append(("episode", run, record))

    @arena.hookimpl
    def arena_run_end(self, run, summary):
        self.calls.append(("end", run, summary))


class Raiser:
    @arena.hookimpl
    def arena_run_start(self, run):
        raise RuntimeError("observer start broke")

    @arena.hookimpl
    def arena_episode_end(self, run, record):
        raise RuntimeError("observer episode broke")


def test_lifecycle_hooks_get_the_run_records_and_summary(plugins, tmp_path, caplog) -> None:
    obs = Observer()
    plugins.pm.register(Raiser(), name="raiser")
    plugins.pm.register(obs, name="observer")
    out = tmp_path / "run"
    with caplog.at_level(logging.ERROR, logger="arena.plugins"):
        summary = arena.evaluate(Factory(), "debug/suite", episodes=2, num_envs=2, output=out, plugins=plugins)
    kinds = [c[0] for c in obs.calls]
    assert kinds == ["start", "episode", "episode", "episode", "episode", "end"]
    run = obs.calls[0][1]
    assert all(c[1] is run for c in obs.calls)
    assert run.run_dir == out
    assert run.episodes_planned == 4 and run.episodes_done_before == 0
    assert run.env_spec.name == "debug/suite"
    assert run.config["episodes"] == 2 and run.config["num_envs"] == 2
    records = [c[2] for c in obs.calls if c[0] == "episode"]
    assert sorted((r.task, r.episode_index) for r in records) == [
        ("reach", 0),
        ("reach", 1),
        ("reach-far", 0),
        ("reach-far", 1),
    ]
    assert obs.calls[-1][2] is summary
    # the raising observer was logged, never fatal
    assert "observer 'raiser' failed in arena_run_start; the run goes on" in caplog.text
    assert caplog.text.count("observer 'raiser' failed in arena_episode_end") == 4
    assert summary.overall.episodes == 4


def test_run_start_reports_episodes_done_before_on_resume(plugins, tmp_path) -> None:
    out = tmp_path / "run"
    arena.evaluate("zero", "debug/reach", episodes=2, max_steps=2, output=out)
    obs = Observer()
    plugins.pm.register(obs, name="observer")
    arena.evaluate("zero", "debug/reach", episodes=2, max_steps=2, resume=out, plugins=plugins)
    start = obs.calls[0][1]
    assert (start.episodes_planned, start.episodes_done_before) == (2, 2)
    assert [c[0] for c in obs.calls] == ["start", "end"]


def test_observer_from_an_entry_point(fake_dists, monkeypatch, tmp_path) -> None:
    log = tmp_path / "hooks.log"
    source = f"""
import pathlib
import arena
LOG = pathlib.Path({str(log)!r})

def _write(line):
    with open(LOG, "a") as fh:
        fh.write(line + "\\n")

@arena.hookimpl
def arena_run_start(run):
    _write("start " + str(run.episodes_planned))

@arena.hookimpl
def arena_episode_end(run, record):
    _write("episode " + record.task + " " + str(record.episode_index))

@arena.hookimpl
def arena_run_end(run, summary):
    _write("end " + str(summary.overall.episodes))
"""
    fake_dists.add("arena-tracker", source, plugin="tracker")
    monkeypatch.setenv("ARENA_PLUGINS", "tracker")
    arena.evaluate("zero", "debug/reach", episodes=3, max_steps=2, write=False)
    lines = log.read_text().splitlines()
    assert lines[0] == "start 3" and lines[-1] == "end 3"
    assert sorted(lines[1:-1]) == ["episode reach 0", "episode reach 1", "episode reach 2"]
