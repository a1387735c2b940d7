"""`arena check`: what the env provides next to what the policy expects, before any episode runs."""

from __future__ import annotations

import argparse
from typing import Any

from arena.assembly import RunAssembly
from arena.compat import CheckRow, compare
from arena.errors import ArenaError
from arena.plugins import Plugins
from arena.table import format_table

__all__ = ["CheckRow", "compare", "run_check"]


def run_check(plugins: Plugins, args: argparse.Namespace, configs: dict[str, Any]) -> int:
    assembly = RunAssembly(plugins)
    with assembly.scope():
        spec, name, rows = _rows(assembly, args, configs)
    print(f"env {spec.name} (embodiment {spec.embodiment})  vs  policy {name}")
    _print_rows(rows)
    bad = [r for r in rows if not r.ok]
    if bad:
        print(f"{len(bad)} mismatch(es): " + "; ".join(f"{r.item}: env {r.env}, policy {r.policy}" for r in bad))
        return 1
    print("ok: the policy fits the env")
    return 0


def _rows(assembly: RunAssembly, args: argparse.Namespace, configs: dict[str, Any]) -> tuple[Any, str, list[CheckRow]]:
    from arena.evaluator import check_stages

    num_envs = args.num_envs or 1
    vec_env, _ = assembly.env(args.env, configs.get("env"), num_envs)
    try:
        spec = vec_env.spec
        policy, name, _ = assembly.policy(args.policy, configs.get("policy"), spec, num_envs)
        with policy:
            desc = policy.describe()
            rows = compare(spec, desc)
            try:
                made = assembly.scheduler(args.scheduler, configs.get("scheduler"), num_envs, spec, desc)
                k = getattr(made.scheduler, "execution_horizon", None)
                rows.append(CheckRow(f"scheduler {args.scheduler}", "-", f"executes {k}" if k else "ok", True))
                stages = assembly.stages(getattr(args, "stages", None), desc, num_envs)
                try:
                    check_stages(stages, num_envs, made.scheduler)
                    rows.append(CheckRow("pipeline stages", "-", str(stages), True))
                except ArenaError as exc:
                    rows.append(CheckRow("pipeline stages", "-", str(exc), False))
            except ArenaError as exc:
                rows.append(CheckRow(f"scheduler {args.scheduler}", "-", str(exc), False))
    finally:
        vec_env.close()
    return spec, name, rows


def _print_rows(rows: list[CheckRow]) -> None:
    print(
        format_table(
            ["item", "env provides", "policy expects", "status", "note"],
            [[r.item, r.env, r.policy, "ok" if r.ok else "MISMATCH", r.note] for r in rows],
        )
    )
