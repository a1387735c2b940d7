"""Reading a run directory back, for ``arena report`` and ``arena compare``.

``episodes.jsonl`` is the source of truth: statistics are recomputed from it,
so an interrupted run (no summary.json yet) or one resumed after its summary
was written is shown as it really is. summary.json, when present, supplies
what the episodes do not carry: the task list, versions and success rule.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import attrs

from arena.errors import ConfigError
from arena.results import CONFIG_FILE, EPISODES_FILE, SUMMARY_FILE, EpisodeRecord, RunDir, Summary, summarize

log = logging.getLogger(__name__)

__all__ = ["RunData", "load_run"]


@attrs.define
class RunData:
    """A run directory's episodes and the summary recomputed from them."""

    path: Path
    records: list[EpisodeRecord]
    summary: Summary
    #: episodes the run planned (tasks x episodes), when known
    planned: int | None

    @property
    def complete(self) -> bool:
        return self.planned is None or len(self.records) >= self.planned


def load_run(path: str | Path) -> RunData:
    """Load ``path``; a clear ConfigError when it is missing or not a run directory."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: no such run directory")
    if not p.is_dir():
        raise ConfigError(f"{p}: not a directory")
    if not (p / EPISODES_FILE).exists() and not (p / SUMMARY_FILE).exists():
        raise ConfigError(f"{p}: not a run directory (no {EPISODES_FILE} or {SUMMARY_FILE})")
    stored = _read_json(p / SUMMARY_FILE) or {}
    config = stored.get("config") or _read_json(p / CONFIG_FILE) or {}
    records = sorted(RunDir(p).load_records(), key=lambda r: (r.task, r.episode_index))
    tasks = list(stored.get("tasks") or {})
    for r in records:  # tasks seen only in the episodes (interrupted run) keep first-seen order
        if r.task not in tasks:
            tasks.append(r.task)
    summary = summarize(
        records,
        tasks,
        config,
        dict(stored.get("versions") or {}),
        success_rule=str(stored.get("success_rule") or ""),
        run_dir=str(p),
    )
    episodes = config.get("episodes")
    # without summary.json the task list is what the episodes show: a lower bound, still enough to
    # tell an interrupted run from a finished one in all but the rarest case
    planned = episodes * len(tasks) if isinstance(episodes, int) and tasks else None
    return RunData(path=p, records=records, summary=summary, planned=planned)


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        log.warning("%s: unreadable (%s); ignored", path, exc)
        return None
    return data if isinstance(data, dict) else None
