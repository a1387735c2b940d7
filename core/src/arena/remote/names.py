"""Env names a mapping refers to, resolved against an env spec with one set of problem messages.

Every remote family's mapping says which env camera feeds an image key and which state (or
action) groups, or single elements of them (``joints``), feed a vector key. This module turns
those names into what the translators index with, and every name the env lacks into a
problem naming the key, the mapping, and the names the env does have, so ``arena check``
reads the same for GR00T, openpi and OpenVLA.

A vector key resolves to *runs*: ``(group, None)`` for a whole group, ``(group, columns)``
for elements of one group; consecutive elements of one group share a run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["Run", "camera_problem", "groups_text", "resolve_runs", "run_width", "runs_text"]

Run = tuple[str, "np.ndarray | None"]


def groups_text(groups: Mapping[str, Sequence[Any]], names: Sequence[str] | None = None) -> str:
    """``arm(6)+gripper(1)``: groups with their sizes, for messages."""
    return "+".join(f"{g}({len(groups[g]) if g in groups else '?'})" for g in (names or groups)) or "none"


def camera_problem(label: str, camera: str, spec: Any, where: str) -> str | None:
    """The problem when env ``spec`` has no camera ``camera`` (None when it has)."""
    if camera in spec.cameras:
        return None
    return (
        f"{label}: {where} reads camera {camera!r}, which env {spec.name} lacks "
        f"(env cameras: {', '.join(spec.cameras) or 'none'})"
    )


def resolve_runs(
    label: str,
    env_groups: Mapping[str, Sequence[str]],
    kind: str,
    env_name: str,
    where: str,
    groups: Sequence[str] | None = None,
    joints: Sequence[str] | None = None,
) -> tuple[list[Run], list[str]]:
    """Resolve ``groups`` (whole groups) or ``joints`` (``GROUP.ELEMENT`` or a bare unique element).

    Returns ``(runs, problems)``; with problems, the runs are incomplete and must not be used.
    ``kind`` is ``state`` or ``action``; ``env_groups`` maps each env group to its element names.
    """
    runs: list[Run] = []
    if groups is not None:
        missing = [g for g in groups if g not in env_groups]
        if missing:
            return runs, [
                f"{label}: {where} reads {kind} group(s) {missing}, which env {env_name} lacks "
                f"(env {kind} groups: {groups_text(env_groups)})"
            ]
        return [(g, None) for g in groups], []
    problems: list[str] = []
    for joint in joints or ():
        hit: tuple[str, int] | None = None
        for g, els in env_groups.items():
            if joint.startswith(f"{g}.") and joint[len(g) + 1 :] in els:
                hit = (g, list(els).index(joint[len(g) + 1 :]))
                break
        if hit is None:
            bare = [(g, i) for g, els in env_groups.items() for i, e in enumerate(els) if e == joint]
            if len(bare) > 1:
                options = ", ".join(f"{g}.{env_groups[g][i]}" for g, i in bare)
                problems.append(f"{label}: {where}: joint {joint!r} is ambiguous ({options}); write GROUP.ELEMENT")
                continue
            hit = bare[0] if bare else None
        if hit is None:
            qualified = ", ".join(f"{g}.{e}" for g, els in env_groups.items() for e in els) or "none"
            problems.append(
                f"{label}: {where} reads joint {joint!r}, an element of no env {kind} group of {env_name} "
                f"(env {kind} elements: {qualified})"
            )
            continue
        g, i = hit
        last = runs[-1] if runs else None
        if last is not None and last[0] == g and last[1] is not None:
            runs[-1] = (g, np.append(last[1], i))
        else:
            runs.append((g, np.asarray([i], dtype=np.int64)))
    return runs, problems


def run_width(runs: Sequence[Run], env_groups: Mapping[str, Sequence[str]]) -> int:
    return sum(len(env_groups[g]) if cols is None else len(cols) for g, cols in runs)


def runs_text(runs: Sequence[Run], env_groups: Mapping[str, Sequence[str]]) -> str:
    """``groups a(2)+b(3)`` or ``a.x, a.y + b.z``: where a vector's columns come from, for messages."""
    if all(cols is None for _, cols in runs):
        return "groups " + groups_text(env_groups, [g for g, _ in runs])
    parts = [
        f"{g}({len(env_groups[g])})" if cols is None else ", ".join(f"{g}.{env_groups[g][i]}" for i in cols)
        for g, cols in runs
    ]
    return " + ".join(parts)
