"""`arena check`: what the env provides next to what the policy expects, before any episode runs."""

from __future__ import annotations

import argparse
from typing import Any

import attrs

from arena.contract import EnvSpec
from arena.errors import ArenaError
from arena.plugins import Plugins
from arena.policy import PolicyDescription
from arena.run import build_config, make_env, make_policy
from arena.table import format_table

__all__ = ["CheckRow", "compare", "run_check"]


@attrs.define
class CheckRow:
    item: str
    env: str
    policy: str
    ok: bool
    note: str = ""


def _hw(value: tuple[int, int] | None) -> str:
    return "any size" if value is None else f"{value[0]}x{value[1]}"


def compare(spec: EnvSpec, desc: PolicyDescription) -> list[CheckRow]:
    """One row per camera, state group and action fact; ``ok`` false on a mismatch."""
    rows: list[CheckRow] = []
    for cam in sorted(set(spec.cameras) | set(desc.cameras)):
        have = spec.cameras.get(cam)
        if cam not in desc.cameras:
            rows.append(CheckRow(f"camera {cam}", _hw(have), "-", True, "not used"))
        elif have is None:
            rows.append(CheckRow(f"camera {cam}", "-", _hw(desc.cameras[cam]), False, "missing in env"))
        else:
            want = desc.cameras[cam]
            ok = want is None or tuple(want) == tuple(have)
            rows.append(CheckRow(f"camera {cam}", _hw(have), _hw(want), ok, "" if ok else "size differs"))
    for group in sorted(set(spec.state_groups) | set(desc.state)):
        have_n = len(spec.state_groups[group]) if group in spec.state_groups else None
        if group not in desc.state:
            rows.append(CheckRow(f"state {group}", str(have_n), "-", True, "not used"))
        elif have_n is None:
            rows.append(CheckRow(f"state {group}", "-", str(desc.state[group]), False, "missing in env"))
        else:
            want_n = desc.state[group]
            ok = want_n is None or want_n == have_n
            rows.append(CheckRow(f"state {group}", str(have_n), "any" if want_n is None else str(want_n), ok, "" if ok else "size differs"))
    groups = ", ".join(f"{g.name}({g.size})" for g in spec.action_groups)
    ok = desc.action_dim is None or desc.action_dim == spec.action_dim
    rows.append(CheckRow("action dim", f"{spec.action_dim} [{groups}]", str(desc.action_dim), ok, "" if ok else "width differs"))
    rows.append(CheckRow("action horizon", "-", str(desc.action_horizon), desc.action_horizon >= 1))
    if desc.execution_horizon is not None:
        ok = 1 <= desc.execution_horizon <= desc.action_horizon
        rows.append(CheckRow("execution horizon", "-", str(desc.execution_horizon), ok))
    rows.append(CheckRow("instruction", f"{len(spec.tasks)} task(s)", "used" if desc.uses_instruction else "-", True))
    for key, value in desc.info.items():
        rows.append(CheckRow(key, "-", value, True, "info"))
    for problem in desc.problems:
        rows.append(CheckRow("problem", "-", problem, False))
    return rows


def run_check(plugins: Plugins, args: argparse.Namespace, configs: dict[str, Any]) -> int:
    vec_env, _ = make_env(plugins, args.env, configs.get("env"), args.num_envs)
    try:
        spec = vec_env.spec
        policy, name, _ = make_policy(plugins, args.policy, configs.get("policy"), spec, args.num_envs)
        with policy:
            desc = policy.describe()
            rows = compare(spec, desc)
            sched = plugins.schedulers.get(args.scheduler)
            try:
                made = sched.obj(
                    build_config(sched.config, configs.get("scheduler")),
                    args.num_envs,
                    spec.action_dim,
                    max(desc.action_horizon, 1),
                    hold_action=spec.hold,
                    suggested_execution=desc.execution_horizon,
                )
                k = getattr(made, "execution_horizon", None)
                rows.append(CheckRow(f"scheduler {args.scheduler}", "-", f"executes {k}" if k else "ok", True))
            except ArenaError as exc:
                rows.append(CheckRow(f"scheduler {args.scheduler}", "-", str(exc), False))
    finally:
        vec_env.close()
    print(f"env {spec.name} (embodiment {spec.embodiment})  vs  policy {name}")
    print(
        format_table(
            ["item", "env provides", "policy expects", "status", "note"],
            [[r.item, r.env, r.policy, "ok" if r.ok else "MISMATCH", r.note] for r in rows],
        )
    )
    bad = [r for r in rows if not r.ok]
    if bad:
        print(f"{len(bad)} mismatch(es): " + "; ".join(f"{r.item}: env {r.env}, policy {r.policy}" for r in bad))
        return 1
    print("ok: the policy fits the env")
    return 0
