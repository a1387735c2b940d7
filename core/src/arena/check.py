"""`arena check`: what the env provides next to what the policy expects, before any episode runs."""

from __future__ import annotations

import argparse
from typing import Any

from arena.compat import CheckRow, compare
from arena.errors import ArenaError
from arena.plugins import Plugins, activate
from arena.run import build_config, make_env, make_policy
from arena.table import format_table

__all__ = ["CheckRow", "compare", "run_check"]


def run_check(plugins: Plugins, args: argparse.Namespace, configs: dict[str, Any]) -> int:
    activate(plugins)
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
