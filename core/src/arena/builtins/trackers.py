"""Built-in observer ``trackers``: per-episode metrics to TensorBoard or Weights & Biases.

It is an ordinary plugin that implements only the lifecycle hooks
(``arena_run_start``, ``arena_episode_end``, ``arena_run_end``), written the
way a third party would write theirs: it reads its switch from the run's
config (``arena eval --tracker tensorboard`` puts ``"tracker"`` there) and
keeps one tracker per run. The packages are optional extras
(``arena-core[tensorboard]``, ``arena-core[wandb]``) imported only when used.

Step of every per-episode point: the episode's position in the run's
completion order (1, 2, ...), continuing after the episodes a ``--resume``
kept, so a resumed run extends its curves instead of overwriting them.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import arena
from arena.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from arena.plugins import Plugins
    from arena.results import EpisodeRecord, Summary
    from arena.runinfo import RunInfo

log = logging.getLogger(__name__)

__all__ = ["TRACKERS", "TENSORBOARD_DIR", "check_tracker", "episode_metrics"]

#: tracker name -> (module that must be importable, extra that installs it)
TRACKERS: dict[str, tuple[str, str]] = {
    "tensorboard": ("tensorboard", "tensorboard"),
    "wandb": ("wandb", "wandb"),
}
#: where the TensorBoard tracker writes, inside the run directory
TENSORBOARD_DIR = "tensorboard"


def check_tracker(name: str, plugins: Plugins | None = None, has_run_dir: bool = True) -> None:
    """Refuse an unknown or uninstalled tracker before the run starts (observers cannot stop a run)."""
    if name not in TRACKERS:
        raise ConfigError(f"--tracker: expected one of {', '.join(TRACKERS)}, got {name!r}")
    if plugins is not None and not plugins.pm.has_plugin("trackers"):
        raise ConfigError(f"--tracker {name}: the built-in plugin 'trackers' is blocked (--plugin no:trackers)")
    module, extra = TRACKERS[name]
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f'--tracker {name}: the {module} package is not installed; pip install "arena-core[{extra}]"')
    if name == "tensorboard" and not has_run_dir:
        raise ConfigError("--tracker tensorboard writes into the run directory; it needs write=True")


def episode_metrics(record: EpisodeRecord, successes: int, done: int) -> dict[str, float]:
    """The scalars logged for one episode (``successes``/``done``: this run so far, this one included)."""
    metrics = {
        "episode/success": float(record.success),
        "episode/length": float(record.length),
        "episode/error": float(record.error),
        "running/success_rate": successes / done,  # of the episodes this process ran
        f"task/{record.task}/success": float(record.success),
    }
    for key in ("wall_s", "env_s", "infer_s"):
        if key in record.timings:
            metrics[f"timing/{key}"] = float(record.timings[key])
    return metrics


def summary_metrics(summary: Summary) -> dict[str, float]:
    out = {
        "summary/success_rate": summary.overall.success_rate,
        "summary/ci95_low": summary.overall.ci95[0],
        "summary/ci95_high": summary.overall.ci95[1],
    }
    for task, stats in summary.tasks.items():
        out[f"summary/{task}/success_rate"] = stats.success_rate
    return out


class Tracker(Protocol):
    def log(self, metrics: dict[str, float], step: int) -> None: ...

    def finish(self, metrics: dict[str, float], step: int) -> None: ...


class TensorBoardTracker:
    """Event files in RUN_DIR/tensorboard, flushed every episode so a killed run keeps its curves."""

    def __init__(self, run: RunInfo) -> None:
        from torch.utils.tensorboard import SummaryWriter

        assert run.run_dir is not None
        self.writer = SummaryWriter(log_dir=str(Path(run.run_dir) / TENSORBOARD_DIR))
        self.writer.add_text("config", "```\n" + json.dumps(run.config, indent=2, default=str) + "\n```", 0)

    def log(self, metrics: dict[str, float], step: int) -> None:
        for tag, value in metrics.items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def finish(self, metrics: dict[str, float], step: int) -> None:
        self.log(metrics, step)
        self.writer.close()


class WandbTracker:
    """One W&B run per evaluation (``WANDB_MODE=offline`` works without an account)."""

    def __init__(self, run: RunInfo) -> None:
        import wandb

        run_dir = Path(run.run_dir) if run.run_dir is not None else None
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "arena"),
            name=run_dir.name if run_dir is not None else None,
            dir=str(run_dir) if run_dir is not None else None,
            config=run.config,
        )

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(metrics, step=step)

    def finish(self, metrics: dict[str, float], step: int) -> None:
        self.run.summary.update(metrics)
        self.run.finish()


_FACTORIES = {"tensorboard": TensorBoardTracker, "wandb": WandbTracker}


class _Active:
    def __init__(self, tracker: Tracker, done_before: int) -> None:
        self.tracker = tracker
        self.step = done_before
        self.done = 0
        self.successes = 0


#: one tracker per run in progress (observers are module-level; a process may run several evaluations)
_active: dict[int, _Active] = {}


@arena.hookimpl
def arena_run_start(run: RunInfo) -> None:
    name = run.config.get("tracker")
    if not name:
        return
    check_tracker(name, has_run_dir=run.run_dir is not None)
    _active[id(run)] = _Active(_FACTORIES[name](run), run.episodes_done_before)
    log.info("tracking run %s with %s", run.run_dir, name)


@arena.hookimpl
def arena_episode_end(run: RunInfo, record: EpisodeRecord) -> None:
    state = _active.get(id(run))
    if state is None:
        return
    state.step += 1
    state.done += 1
    state.successes += int(record.success)
    state.tracker.log(episode_metrics(record, state.successes, state.done), state.step)


@arena.hookimpl
def arena_run_end(run: RunInfo, summary: Summary) -> None:
    state = _active.pop(id(run), None)
    if state is not None:
        state.tracker.finish(summary_metrics(summary), state.step)


def active_count() -> int:
    """Trackers still open (a test checks runs close theirs)."""
    return len(_active)
