"""``arena report RUN_DIR``: one self-contained HTML page per run.

Everything is inlined (charts as base64 PNG, videos as base64 ``data:`` URIs)
so the file can be mailed, attached to a PR or opened from an artifact store
without the run directory next to it. Numbers are recomputed from
``episodes.jsonl`` (see :mod:`arena.rundata`), so the page agrees with the
episodes even for an interrupted run.
"""

from __future__ import annotations

import base64
import collections
import datetime as _dt
import html
import io
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from arena.errors import ConfigError
from arena.results import EpisodeRecord, Stats, Summary
from arena.rundata import RunData, load_run
from arena.video import VIDEO_DIR, VideoFile, list_videos, safe_name

log = logging.getLogger(__name__)

__all__ = ["REPORT_FILE", "write_report", "render_report"]

REPORT_FILE = "report.html"
#: above this many bytes of embedded video the page gets slow to open; say so
LARGE_VIDEO_BYTES = 200 * 1024 * 1024
INSTALL_HINT = 'pip install "arena-core[report]"'

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px;
       padding: 0 1rem; color: #1d1d1f; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem;
       border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
.sub { color: #666; margin-top: 0; }
.headline { display: flex; gap: 2rem; align-items: baseline; flex-wrap: wrap; }
.big { font-size: 2.6rem; font-weight: 600; }
.warn { background: #fff4ce; border: 1px solid #e0c060; padding: .5rem .8rem; border-radius: 4px; }
table { border-collapse: collapse; font-size: .9rem; } td, th { padding: .25rem .6rem; text-align: left;
       border-bottom: 1px solid #eee; } th { background: #f6f6f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #1a7f37; font-weight: 600; } .fail { color: #c62828; font-weight: 600; }
img.chart { max-width: 100%; height: auto; display: block; margin: .5rem 0; }
.videos { display: flex; flex-wrap: wrap; gap: 1rem; }
.episode { border: 1px solid #ddd; border-radius: 6px; padding: .5rem; width: 240px; }
.episode video { width: 224px; height: 224px; background: #000; image-rendering: pixelated; }
.episode .meta { font-size: .85rem; }
pre { background: #f6f6f6; padding: .8rem; overflow-x: auto; font-size: .8rem; }
"""


def write_report(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Write the report of ``run_dir`` to ``output`` (default ``RUN_DIR/report.html``) and return its path."""
    run = load_run(run_dir)
    path = Path(output) if output is not None else run.path / REPORT_FILE
    page = render_report(run)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    log.info("report written to %s (%d bytes)", path, len(page))
    return path


def render_report(run: RunData) -> str:
    """The HTML page of ``run``."""
    summary = run.summary
    videos = _videos_by_episode(run.path / VIDEO_DIR)
    config = summary.config
    title = f"{config.get('policy', '?')} on {config.get('env', '?')}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>arena report: {_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="sub">run directory <code>{_e(str(run.path))}</code>, report written '
        f"{_dt.datetime.now().isoformat(timespec='seconds')}</p>",
    ]
    if not run.complete:
        parts.append(
            f'<p class="warn" id="incomplete">Incomplete run: {len(run.records)} of {run.planned} planned episodes '
            "are recorded (continue it with <code>arena eval ... --resume RUN_DIR</code>).</p>"
        )
    parts += _overall(summary.overall, summary.success_rule)
    parts += _tasks(summary)
    parts += _lengths(run.records, config.get("max_steps"))
    parts += _failures(run.records)
    parts += _recorded(run.records, videos)
    parts += _episodes(run.records, videos)
    parts += _config(summary)
    parts.append("</body></html>")
    return "\n".join(parts)


# -- sections --------------------------------------------------------------------------------------
def _overall(s: Stats, rule: str) -> list[str]:
    return [
        "<h2>Overall</h2>",
        '<div class="headline">',
        f'<div><div class="big" id="overall-rate">{_pct(s.success_rate)}</div>success rate</div>',
        f'<div><div class="big" id="overall-ci">[{_pct(s.ci95[0])}, {_pct(s.ci95[1])}]</div>95% interval (Wilson)</div>',
        f'<div><div class="big" id="overall-count">{s.successes} / {s.episodes}</div>episodes succeeded</div>',
        "</div>",
        f"<p>errors: {s.errors}; mean episode length: {s.mean_length:.1f} steps."
        + (f" Success rule: {_e(rule)}." if rule else "")
        + "</p>",
    ]


def _tasks(summary: Summary) -> list[str]:
    rows = [
        [
            _e(name),
            f'<td class="num">{s.episodes}</td>',
            f'<td class="num">{s.successes}</td>',
            f'<td class="num">{_pct(s.success_rate)}</td>',
            f'<td class="num">[{_pct(s.ci95[0])}, {_pct(s.ci95[1])}]</td>',
            f'<td class="num">{s.mean_length:.1f}</td>',
            f'<td class="num">{s.errors}</td>',
        ]
        for name, s in summary.tasks.items()
    ]
    return [
        "<h2>Success per task</h2>",
        _img("chart-tasks", _task_chart(summary), "success rate per task with 95% Wilson intervals"),
        _table(["task", "episodes", "successes", "rate", "95% CI", "mean length", "errors"], rows, "tasks-table"),
    ]


def _lengths(records: Sequence[EpisodeRecord], max_steps: Any) -> list[str]:
    return [
        "<h2>Episode lengths</h2>",
        _img("chart-lengths", _length_chart(records, max_steps), "episode length distribution by outcome"),
    ]


def _failures(records: Sequence[EpisodeRecord]) -> list[str]:
    counts: collections.Counter[tuple[str, str]] = collections.Counter(
        (r.failure_reason or "unknown", r.task) for r in records if not r.success
    )
    out = ["<h2>Failure reasons</h2>"]
    if not counts:
        return out + ['<p id="failures-none">No failed episodes.</p>']
    rows = [[_e(reason), _e(task), f'<td class="num">{n}</td>'] for (reason, task), n in counts.most_common()]
    return out + [_table(["reason", "task", "episodes"], rows, "failures-table")]


def _recorded(records: Sequence[EpisodeRecord], videos: dict[tuple[str, int], list[VideoFile]]) -> list[str]:
    out = ["<h2>Recorded episodes</h2>"]
    shown = [
        (r, videos[(safe_name(r.task), r.episode_index)])
        for r in records
        if (safe_name(r.task), r.episode_index) in videos
    ]
    if not shown:
        return out + [
            '<p id="videos-none">No videos in this run (record some with <code>arena eval ... --videos K</code>).</p>'
        ]
    total = 0
    out.append('<div class="videos">')
    for r, files in shown:
        for v in files:
            data = v.path.read_bytes()
            total += len(data)
            out.append(
                f'<div class="episode" id="ep-{_e(safe_name(r.task))}-{r.episode_index}-{_e(v.camera)}">'
                f'<video controls muted loop playsinline preload="auto" src="data:video/mp4;base64,'
                f'{base64.b64encode(data).decode("ascii")}"></video>'
                f'<div class="meta"><b>{_e(r.task)}</b> episode {r.episode_index} ({_e(v.camera)})<br>'
                f"{_outcome(r)}, {r.length} steps, seed {r.seed}</div></div>"
            )
    out.append("</div>")
    if total > LARGE_VIDEO_BYTES:
        log.warning(
            "the report embeds %.0f MB of video; record fewer episodes (--videos) for a lighter page", total / 2**20
        )
    return out


def _episodes(records: Sequence[EpisodeRecord], videos: dict[tuple[str, int], list[VideoFile]]) -> list[str]:
    rows = [
        [
            _e(r.task),
            f'<td class="num">{r.episode_index}</td>',
            f'<td class="num">{r.seed}</td>',
            _outcome(r),
            f'<td class="num">{r.length}</td>',
            _e(r.failure_reason or ""),
            "video" if (safe_name(r.task), r.episode_index) in videos else "",
        ]
        for r in records
    ]
    return [
        f"<h2>All episodes</h2><details><summary>{len(records)} episodes</summary>",
        _table(["task", "episode", "seed", "outcome", "length", "failure reason", ""], rows, "episodes-table"),
        "</details>",
    ]


def _config(summary: Summary) -> list[str]:
    versions = [[_e(k), _e(str(v))] for k, v in summary.versions.items()]
    return [
        "<h2>Configuration</h2>",
        f'<pre id="config">{html.escape(json.dumps(summary.config, indent=2, sort_keys=True, default=str), quote=False)}</pre>',
        "<h2>Versions</h2>",
        _table(["package", "version"], versions, "versions-table")
        if versions
        else "<p>not recorded (no summary.json)</p>",
    ]


# -- charts ----------------------------------------------------------------------------------------
def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ConfigError(f"arena report needs matplotlib: {INSTALL_HINT}") from exc
    return plt


def _task_chart(summary: Summary) -> bytes:
    plt = _pyplot()
    names = list(summary.tasks) + ["OVERALL"]
    stats = list(summary.tasks.values()) + [summary.overall]
    rates = [s.success_rate for s in stats]
    err = [[r - s.ci95[0] for r, s in zip(rates, stats)], [s.ci95[1] - r for r, s in zip(rates, stats)]]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(names) + 1.2))
    ys = list(range(len(names)))[::-1]
    colors = ["#4c72b0"] * (len(names) - 1) + ["#333333"]
    ax.barh(ys, rates, xerr=err, color=colors, capsize=3, ecolor="#888888")
    ax.set_yticks(ys, names)
    ax.set_xlim(0, 1)
    ax.set_xlabel("success rate (bars: 95% Wilson interval)")
    for y, s in zip(ys, stats):
        ax.text(1.01, y, f"{s.successes}/{s.episodes}", va="center", fontsize=8, transform=ax.get_yaxis_transform())
    return _png(fig)


def _length_chart(records: Sequence[EpisodeRecord], max_steps: Any) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3))
    ok = [r.length for r in records if r.success]
    bad = [r.length for r in records if not r.success]
    top = max([r.length for r in records] + [int(max_steps) if isinstance(max_steps, int) else 1])
    bins = min(50, max(1, top))
    ax.hist(
        [ok, bad], bins=bins, range=(0, top), stacked=True, color=["#2e7d32", "#c62828"], label=["success", "failure"]
    )
    if isinstance(max_steps, int):
        ax.axvline(max_steps, color="#555555", linestyle="--", linewidth=1, label=f"max steps ({max_steps})")
    ax.set_xlabel("episode length (steps)")
    ax.set_ylabel("episodes")
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    _pyplot().close(fig)
    return buf.getvalue()


# -- helpers ---------------------------------------------------------------------------------------
def _videos_by_episode(directory: Path) -> dict[tuple[str, int], list[VideoFile]]:
    out: dict[tuple[str, int], list[VideoFile]] = {}
    for v in list_videos(directory):
        out.setdefault((v.task, v.episode_index), []).append(v)
    return out


def _img(element_id: str, png: bytes, alt: str) -> str:
    return f'<img class="chart" id="{element_id}" alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], element_id: str) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in row) + "</tr>" for row in rows
    )
    return f'<table id="{element_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _outcome(r: EpisodeRecord) -> str:
    return '<span class="ok">success</span>' if r.success else '<span class="fail">failure</span>'


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
