"""``arena compare RUN_A RUN_B [...]``: per-task success side by side, each run against the first.

For every task and every run after the first (the baseline), the difference
in success rate and whether it is significant at ``alpha`` (two-sided
two-proportion z-test, Fisher's exact test when an expected count is below 5;
see :mod:`arena.stats`). A task present in only some runs is shown with
``n/a`` where it is missing, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from arena.errors import ConfigError
from arena.results import Stats
from arena.rundata import RunData, load_run
from arena.stats import ALPHA, ProportionTest, compare_proportions
from arena.table import format_table

__all__ = ["Comparison", "TaskComparison", "compare_runs", "comparison_table"]

OVERALL = "OVERALL"


@attrs.define
class TaskComparison:
    """One task (or ``OVERALL``): each run's stats (None where missing) and each run's test against the baseline."""

    task: str
    stats: list[Stats | None]
    #: one per run after the first; None when the task is missing (or empty) in either run
    tests: list[ProportionTest | None]


@attrs.define
class Comparison:
    runs: list[str]
    labels: list[str]
    alpha: float
    rows: list[TaskComparison]

    @property
    def missing(self) -> dict[str, list[str]]:
        """Task -> labels of the runs that do not have it."""
        return {
            row.task: [self.labels[i] for i, s in enumerate(row.stats) if s is None]
            for row in self.rows
            if any(s is None for s in row.stats)
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.runs[0],
            "runs": [{"path": p, "label": lbl} for p, lbl in zip(self.runs, self.labels)],
            "alpha": self.alpha,
            "test": "two-sided two-proportion z-test (pooled); Fisher's exact test when an expected count < 5",
            "tasks": {
                row.task: {
                    "runs": [s.to_dict() if s is not None else None for s in row.stats],
                    "vs_baseline": [
                        {"run": self.labels[i + 1], **t.to_dict()} if t is not None else None
                        for i, t in enumerate(row.tests)
                    ],
                }
                for row in self.rows
            },
            "missing": self.missing,
        }


def compare_runs(paths: Sequence[str | Path], alpha: float = ALPHA) -> Comparison:
    """Load every run (clear errors for a missing one) and compare each with the first."""
    if len(paths) < 2:
        raise ConfigError("arena compare: give at least two run directories (the first is the baseline)")
    if not 0 < alpha < 1:
        raise ConfigError(f"--alpha: expected a number between 0 and 1, got {alpha}")
    runs = [load_run(p) for p in paths]
    labels = _labels(runs)
    tasks: list[str] = []
    for run in runs:
        tasks += [t for t in run.summary.tasks if t not in tasks]
    rows = []
    for task in tasks:
        stats = [_present(run.summary.tasks.get(task)) for run in runs]
        rows.append(TaskComparison(task, stats, _tests(stats, alpha)))
    overall = [_present(run.summary.overall) for run in runs]
    rows.append(TaskComparison(OVERALL, overall, _tests(overall, alpha)))
    return Comparison([str(r.path) for r in runs], labels, alpha, rows)


def comparison_table(cmp: Comparison) -> str:
    """Terminal table: each run's rate [CI] (s/n); for each later run, diff, p-value, test and verdict."""
    header = ["task", f"{cmp.labels[0]} (baseline)"]
    for label in cmp.labels[1:]:
        header += [label, "diff", "p", "test", "significant"]
    lines = []
    for row in cmp.rows:
        cells: list[str] = [row.task, _cell(row.stats[0])]
        for s, t in zip(row.stats[1:], row.tests):
            cells.append(_cell(s))
            if t is None:
                cells += ["n/a", "n/a", "", "n/a"]
            else:
                cells += [
                    f"{100 * t.difference:+.1f} pp",
                    f"{t.p_value:.3g}",
                    t.method,
                    "YES" if t.significant else "no",
                ]
        lines.append(cells)
    out = format_table(header, lines)
    legend = ["runs: " + ", ".join(f"{lbl} = {p}" for lbl, p in zip(cmp.labels, cmp.runs))]
    legend.append(
        f"significant: p < {cmp.alpha} (two-sided two-proportion z-test, pooled variance; "
        "Fisher's exact test where an expected count is below 5)"
    )
    for task, where in cmp.missing.items():
        legend.append(f"note: task {task!r} is missing from {', '.join(where)} (shown as n/a)")
    return out + "\n" + "\n".join(legend)


def _present(stats: Stats | None) -> Stats | None:
    return stats if stats is not None and stats.episodes > 0 else None


def _tests(stats: list[Stats | None], alpha: float) -> list[ProportionTest | None]:
    base = stats[0]
    out: list[ProportionTest | None] = []
    for s in stats[1:]:
        if base is None or s is None:
            out.append(None)
        else:
            out.append(compare_proportions(base.successes, base.episodes, s.successes, s.episodes, alpha))
    return out


def _cell(s: Stats | None) -> str:
    if s is None:
        return "n/a"
    return f"{100 * s.success_rate:.1f}% [{100 * s.ci95[0]:.1f}, {100 * s.ci95[1]:.1f}] ({s.successes}/{s.episodes})"


def _labels(runs: list[RunData]) -> list[str]:
    """A, B, C, ... (directory names are long timestamps; the legend maps letters to paths)."""
    return [chr(ord("A") + i) if i < 26 else f"run{i + 1}" for i in range(len(runs))]
