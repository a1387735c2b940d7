"""Does a policy fit an env? One comparison shared by `arena check` (shows it) and `arena eval` (refuses a misfit)."""

from __future__ import annotations

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
            rows.append(
                CheckRow(
                    f"state {group}",
                    str(have_n),
                    "any" if want_n is None else str(want_n),
                    ok,
                    "" if ok else "size differs",
                )
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
