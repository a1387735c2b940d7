"""Episode records, summaries with Wilson intervals, and the run directory on disk.

Every finished episode is appended to ``episodes.jsonl`` and flushed (and
fsynced) as it ends, so a run killed at any point loses at most the episodes
that were still running, which resume re-runs with the same seeds.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from arena.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["EpisodeRecord", "Stats", "Summary", "wilson_interval", "summarize", "RunDir"]

EPISODES_FILE = "episodes.jsonl"
SUMMARY_FILE = "summary.json"
CONFIG_FILE = "config.json"


@attrs.define
class EpisodeRecord:
    """One finished episode (one line of episodes.jsonl).

    ``failure_reason``: None on success, ``"max_steps"`` when the step limit
    was reached, or ``"env_error: ..."`` / ``"worker_died: ..."`` when the env
    failed (then ``error`` is true).
    """

    task: str
    episode_index: int
    seed: int
    success: bool
    length: int
    failure_reason: str | None
    error: bool = False
    timings: dict[str, float] = attrs.field(factory=dict)
    env_slot: int = -1
    #: where the episode ran when that is not this host (a Ray shard); None on one host
    shard: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = attrs.asdict(self)
        if out["shard"] is None:  # one-host records keep their original shape
            del out["shard"]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EpisodeRecord:
        """A record from its JSON form; ValueError naming the field for a missing or mistyped one."""
        if not isinstance(data, Mapping):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        for name, kinds in _FIELD_TYPES.items():
            if name not in data:
                if name in _REQUIRED:
                    raise ValueError(f"field {name!r} is missing")
                continue
            value = data[name]
            if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
                expected = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
                raise ValueError(f"field {name!r}: expected {expected}, got {value!r}")
        names = {f.name for f in attrs.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "task": (str,),
    "episode_index": (int,),
    "seed": (int,),
    "success": (bool,),
    "length": (int,),
    "failure_reason": (str, type(None)),
    "error": (bool,),
    "timings": (dict,),
    "env_slot": (int,),
    "shard": (str, type(None)),
}
_REQUIRED = ("task", "episode_index", "seed", "success", "length")


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score 95% interval for a success rate; (0, 1) when n == 0.

    Wilson rather than the normal approximation because it stays inside
    [0, 1] and behaves at 0 and n successes, common in robot evaluations.
    """
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # round away float noise (a 0-success interval must start at exactly 0)
    return (max(0.0, round(centre - half, 12)), min(1.0, round(centre + half, 12)))


@attrs.define
class Stats:
    episodes: int
    successes: int
    success_rate: float
    ci95: tuple[float, float]
    errors: int
    mean_length: float

    @classmethod
    def of(cls, records: list[EpisodeRecord]) -> Stats:
        n = len(records)
        s = sum(1 for r in records if r.success)
        return cls(
            episodes=n,
            successes=s,
            success_rate=s / n if n else 0.0,
            ci95=wilson_interval(s, n),
            errors=sum(1 for r in records if r.error),
            mean_length=sum(r.length for r in records) / n if n else 0.0,
        )

    def to_dict(self) -> dict[str, Any]:
        d = attrs.asdict(self)
        d["ci95"] = list(self.ci95)
        return d


@attrs.define
class Summary:
    """What summary.json holds and ``arena.evaluate`` returns."""

    overall: Stats
    tasks: dict[str, Stats]
    config: dict[str, Any]
    versions: dict[str, str]
    success_rule: str = ""
    run_dir: str | None = None
    #: work done by THIS invocation (a resumed run counts only its own): env_steps, renders, wall_s
    totals: dict[str, float] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "overall": self.overall.to_dict(),
            "tasks": {k: v.to_dict() for k, v in self.tasks.items()},
            "success_rule": self.success_rule,
            "config": self.config,
            "versions": self.versions,
            "run_dir": self.run_dir,
            "totals": self.totals,
        }


def summarize(
    records: Iterable[EpisodeRecord],
    tasks: Iterable[str],
    config: dict[str, Any],
    versions: dict[str, str],
    success_rule: str = "",
    run_dir: str | None = None,
    totals: dict[str, float] | None = None,
) -> Summary:
    """Per-task and overall statistics; tasks keep the env's order."""
    records = sorted(records, key=lambda r: (r.task, r.episode_index))
    by_task: dict[str, list[EpisodeRecord]] = {t: [] for t in tasks}
    for r in records:
        by_task.setdefault(r.task, []).append(r)
    return Summary(
        overall=Stats.of(records),
        tasks={t: Stats.of(rs) for t, rs in by_task.items()},
        config=config,
        versions=versions,
        success_rule=success_rule,
        run_dir=run_dir,
        totals=dict(totals or {}),
    )


class RunDir:
    """A run directory: config.json, episodes.jsonl (append-only), summary.json."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fh: Any = None

    @property
    def episodes_path(self) -> Path:
        return self.path / EPISODES_FILE

    def create(self, config: dict[str, Any], resume: bool = False) -> None:
        """Create the directory and store ``config``; with ``resume`` check it matches.

        A config that differs from the stored one is refused with the differing
        fields named: mixing episodes of two configs would corrupt the results.
        """
        flag = "--resume" if resume else "--output"
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{flag}: expected a run directory, got the file {self.path}")
        if resume and not self.path.exists():
            raise ConfigError(f"{flag}: no run directory at {self.path}")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{flag}: cannot create the run directory {self.path}: {exc.strerror or exc}") from None
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise ConfigError(f"{flag}: the run directory {self.path} is not writable")
        cfg_path = self.path / CONFIG_FILE
        if resume:
            if not cfg_path.exists():
                raise ConfigError(f"--resume: {self.path} has no {CONFIG_FILE}; is it a run directory?")
            try:
                stored = json.loads(cfg_path.read_text())
                if not isinstance(stored, dict):
                    raise ValueError(f"expected a JSON object, got {type(stored).__name__}")
            except (ValueError, UnicodeDecodeError) as exc:
                raise ConfigError(f"--resume: {cfg_path} is damaged (not a run config: {exc})") from None
            diffs = _diff(stored, json.loads(json.dumps(config)))  # compare as stored (tuples -> lists)
            if diffs:
                raise ConfigError(
                    f"--resume: the config differs from the one stored in {cfg_path}: " + "; ".join(diffs)
                )
            self._drop_partial_line()
        else:
            if self.episodes_path.exists() and self.episodes_path.stat().st_size > 0:
                raise ConfigError(
                    f"--output: {self.path} already holds episodes; use --resume {self.path} to continue it "
                    "or choose another --output"
                )
            tmp = cfg_path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
            os.replace(tmp, cfg_path)

    def _drop_partial_line(self) -> None:
        """A run killed mid-write can leave a truncated last line: cut it so appends stay valid."""
        p = self.episodes_path
        if not p.exists():
            return
        data = p.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            log.warning("dropping a truncated last line of %s (%d bytes)", p, len(data) - keep)
            with open(p, "r+b") as fh:
                fh.truncate(keep)

    def load_records(self) -> list[EpisodeRecord]:
        """Complete, well-typed records, each episode once; everything else is reported (logged).

        A truncated or corrupt line, or one with a mistyped field (``"success": "false"``),
        is not a record: its episode runs again on resume. A second line for the same
        episode is reported and the first one kept, so nothing is counted twice.
        """
        if not self.episodes_path.exists():
            return []
        out: dict[tuple[str, int], EpisodeRecord] = {}
        where: dict[tuple[str, int], int] = {}
        with open(self.episodes_path, "rb") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.endswith(b"\n"):
                    log.warning("%s:%d: truncated line ignored (its episode runs again)", self.episodes_path, lineno)
                    continue
                try:
                    rec = EpisodeRecord.from_dict(json.loads(line))
                except (ValueError, TypeError, UnicodeDecodeError) as exc:
                    log.warning(
                        "%s:%d: unreadable line ignored (its episode runs again): %s", self.episodes_path, lineno, exc
                    )
                    continue
                key = (rec.task, rec.episode_index)
                if key in out:
                    log.warning(
                        "%s:%d: episode %s #%d is recorded again (first on line %d); the first record counts",
                        self.episodes_path, lineno, rec.task, rec.episode_index, where[key],
                    )  # fmt: skip
                    continue
                out[key] = rec
                where[key] = lineno
        return list(out.values())

    def append(self, record: EpisodeRecord) -> None:
        if self._fh is None:
            self._fh = open(self.episodes_path, "a", encoding="utf-8")
        self._fh.write(json.dumps(record.to_dict(), sort_keys=True) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def write_summary(self, summary: Summary) -> Path:
        p = self.path / SUMMARY_FILE
        tmp = p.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
        os.replace(tmp, p)
        return p

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _diff(stored: Any, current: Any, prefix: str = "") -> list[str]:
    if isinstance(stored, dict) and isinstance(current, dict):
        out = []
        for key in sorted(set(stored) | set(current)):
            name = f"{prefix}.{key}" if prefix else key
            if key not in stored:
                out.append(f"{name}: not stored, now {current[key]!r}")
            elif key not in current:
                out.append(f"{name}: stored {stored[key]!r}, now absent")
            else:
                out.extend(_diff(stored[key], current[key], name))
        return out
    if stored != current:
        return [f"{prefix}: stored {stored!r}, now {current!r}"]
    return []
