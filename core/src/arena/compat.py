"""Does a policy fit an env? One comparison shared by `arena check` (shows it) and `arena eval` (refuses a misfit)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from arena.contract import EnvSpec
from arena.errors import ContractError
from arena.policy import PolicyDescription

__all__ = ["CheckRow", "compare", "check_compat"]


@attrs.define
class CheckRow:
    item: str
    env: str
    policy: str
    ok: bool
    note: str = ""


def _hw(value: tuple[int, int] | None) -> str:
    return "any size" if value is None else f"{value[0]}x{value[1]}"


def _group_rows(kind: str, have: dict, want: dict, show: Callable[[Any], str]) -> list[CheckRow]:
    """Rows for one kind of named input (cameras, state groups); ``None`` wanted means any size."""
    rows = []
    for name in sorted(set(have) | set(want)):
        item = f"{kind} {name}"
        if name not in want:
            rows.append(CheckRow(item, show(have[name]), "-", True, "not used"))
        elif name not in have:
            rows.append(CheckRow(item, "-", show(want[name]), False, "missing in env"))
        else:
            ok = want[name] is None or want[name] == have[name]
            rows.append(CheckRow(item, show(have[name]), show(want[name]), ok, "" if ok else "size differs"))
    return rows


def compare(spec: EnvSpec, desc: PolicyDescription) -> list[CheckRow]:
    """One row per camera, state group and action fact; ``ok`` false on a mismatch."""
    rows = _group_rows(
        "camera",
        {c: tuple(hw) for c, hw in spec.cameras.items()},
        {c: None if hw is None else tuple(hw) for c, hw in desc.cameras.items()},
        _hw,
    )
    rows += _group_rows(
        "state",
        {g: len(e) for g, e in spec.state_groups.items()},
        dict(desc.state),
        lambda n: "any" if n is None else str(n),
    )
    groups = ", ".join(f"{g.name}({g.size})" for g in spec.action_groups)
    ok = desc.action_dim is None or desc.action_dim == spec.action_dim
    rows.append(
        CheckRow("action dim", f"{spec.action_dim} [{groups}]", str(desc.action_dim), ok, "" if ok else "width differs")
    )
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


def check_compat(spec: EnvSpec, desc: PolicyDescription) -> None:
    """Refuse to start a run on any mismatch `arena check` would show, naming each one."""
    bad = [r for r in compare(spec, desc) if not r.ok]
    if bad:
        raise ContractError(
            f"policy {desc.family} does not fit env {spec.name} (see `arena check`): "
            + "; ".join(f"{r.item}: env provides {r.env}, policy expects {r.policy}" for r in bad)
        )
