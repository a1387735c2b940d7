"""Preflight (`arena check`): what the env provides next to what the policy expects."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

import arena
from arena.builtins.debug_env import DebugEnvConfig, DebugVectorEnv
from arena.check import compare, run_check
from arena.contract import ActionChunk
from arena.policy import Policy, PolicyDescription


@pytest.fixture
def spec():
    return DebugVectorEnv("reach", DebugEnvConfig(), 1).spec


def rows_by_item(rows):
    return {r.item: r for r in rows}


def test_matching_description_is_all_ok(spec) -> None:
    desc = PolicyDescription(
        family="p",
        action_horizon=4,
        execution_horizon=2,
        cameras={"top": (32, 32)},
        state={"position": 2, "goal": None},
        action_dim=2,
        uses_instruction=True,
        info={"server": "localhost:1"},
    )
    rows = rows_by_item(compare(spec, desc))
    assert all(r.ok for r in rows.values())
    assert (rows["camera top"].env, rows["camera top"].policy) == ("32x32", "32x32")
    assert rows["state goal"].policy == "any"
    assert rows["action dim"].env == "2 [delta(2)]"
    assert rows["action horizon"].policy == "4"
    assert rows["execution horizon"].policy == "2"
    assert rows["instruction"].policy == "used"
    assert (rows["server"].policy, rows["server"].note) == ("localhost:1", "info")


def test_unused_env_inputs_are_fine(spec) -> None:
    rows = rows_by_item(compare(spec, PolicyDescription(family="p")))
    assert rows["camera top"].ok and rows["camera top"].note == "not used"
    assert rows["state position"].ok and rows["state position"].policy == "-"
    assert rows["action dim"].ok  # None: whatever the env has


@pytest.mark.parametrize(
    "desc, item, note",
    [
        (PolicyDescription(family="p", cameras={"top": (224, 224)}), "camera top", "size differs"),
        (PolicyDescription(family="p", cameras={"wrist": None}), "camera wrist", "missing in env"),
        (PolicyDescription(family="p", state={"position": 3}), "state position", "size differs"),
        (PolicyDescription(family="p", state={"joints": 7}), "state joints", "missing in env"),
        (PolicyDescription(family="p", action_dim=7), "action dim", "width differs"),
        (PolicyDescription(family="p", action_horizon=2, execution_horizon=3), "execution horizon", ""),
        (PolicyDescription(family="p", action_horizon=0), "action horizon", ""),
        (PolicyDescription(family="p", problems=["cannot map key 'eef'"]), "problem", ""),
    ],
)
def test_each_mismatch_is_a_failing_row(spec, desc, item: str, note: str) -> None:
    rows = compare(spec, desc)
    bad = [r for r in rows if not r.ok]
    assert [r.item for r in bad] == [item]
    assert bad[0].note == note


class NeedsWrist(Policy):
    """describes a camera the debug env does not have"""

    def infer(self, observation, env_mask):
        ids = np.flatnonzero(env_mask)
        return ActionChunk(np.zeros((len(ids), 1, 2), np.float32), observation.env_ids[ids])

    def describe(self):
        return PolicyDescription(family="needs-wrist", cameras={"wrist": (8, 8)}, action_dim=2)


class Fits(NeedsWrist):
    def describe(self):
        return PolicyDescription(family="fits", cameras={"top": None}, action_dim=2, action_horizon=3)


class Provider:
    @arena.hookimpl
    def arena_register_policies(self, registry):
        registry.register("needs-wrist", NeedsWrist)
        registry.register("fits", Fits)


def args(policy: str, scheduler: str = "chunked") -> argparse.Namespace:
    return argparse.Namespace(policy=policy, env="debug/reach", num_envs=1, scheduler=scheduler)


def test_run_check_with_a_plugin_object(plugins, capsys) -> None:
    plugins.pm.register(Provider(), name="provider")
    assert run_check(plugins, args("needs-wrist"), {}) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "env debug/reach (embodiment point2d)  vs  policy needs-wrist"
    wrist = next(line for line in out.splitlines() if line.startswith("camera wrist"))
    assert "MISMATCH" in wrist and "missing in env" in wrist
    assert "1 mismatch(es): camera wrist: env -, policy 8x8" in out

    assert run_check(plugins, args("fits"), {"scheduler": {"execution_horizon": 2}}) == 0
    out = capsys.readouterr().out
    assert "executes 2" in out and out.strip().endswith("ok: the policy fits the env")


def test_run_check_reports_a_bad_scheduler_config(plugins, capsys) -> None:
    plugins.pm.register(Provider(), name="provider")
    assert run_check(plugins, args("fits"), {"scheduler": {"execution_horizon": 4}}) == 1
    out = capsys.readouterr().out
    assert "action_horizon (3), got 4" in out
