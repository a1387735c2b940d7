"""Plain-text tables for the terminal (no dependency: a few lines of formatting)."""

from __future__ import annotations

from collections.abc import Sequence

from arena.results import Summary

__all__ = ["format_table", "summary_table"]


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summary_table(summary: Summary) -> str:
    """Per-task success with Wilson 95% intervals, then the overall line."""
    rows = []
    for name, s in list(summary.tasks.items()) + [("OVERALL", summary.overall)]:
        rows.append(
            [
                name,
                s.episodes,
                s.successes,
                f"{s.success_rate:.3f}",
                f"[{s.ci95[0]:.3f}, {s.ci95[1]:.3f}]",
                f"{s.mean_length:.1f}",
                s.errors,
            ]
        )
    return format_table(["task", "episodes", "successes", "rate", "95% CI (Wilson)", "mean len", "errors"], rows)
