"""The built-in ``trackers`` observer, and a third-party observer written as docs/results.md shows."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path

import pytest
from arena_core_testlib import eval_argv, read_records

import arena
import arena.plugins
from arena.builtins import trackers
from arena.cli import main
from arena.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def _scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, list[tuple[int, float]]] = {}
    for events in sorted(logdir.glob("events.out.tfevents.*")):  # one file per process (resume adds one)
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return out


def test_tensorboard_gets_every_episode(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason='tensorboard is not installed (pip install "arena-core[tensorboard]")')
    run = tmp_path / "run"
    summary = arena.evaluate(
        "random", "debug/suite", episodes=3, num_envs=2, max_steps=20, output=run, tracker="tensorboard"
    )
    assert trackers.active_count() == 0  # closed at the end of the run
    scalars = _scalars(run / "tensorboard")
    records = read_records(run)  # in the order the episodes ended: steps 1..6
    assert scalars["episode/success"] == [(i + 1, float(r.success)) for i, r in enumerate(records)]
    assert scalars["episode/length"] == [(i + 1, float(r.length)) for i, r in enumerate(records)]
    assert [s for s, _ in scalars["task/reach-far/success"]] == [
        i + 1 for i, r in enumerate(records) if r.task == "reach-far"
    ]
    assert len(scalars["timing/wall_s"]) == 6
    assert scalars["summary/success_rate"] == [(6, pytest.approx(summary.overall.success_rate))]
    assert json.loads((run / "summary.json").read_text())["config"]["tracker"] == "tensorboard"
    assert "tracker" not in json.loads((run / "config.json").read_text())  # not part of the run's identity


def test_tensorboard_curves_continue_after_resume(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    run = tmp_path / "run"
    arena.evaluate("random", "debug/reach", episodes=4, max_steps=10, output=run)
    lines = (run / "episodes.jsonl").read_text().splitlines(keepends=True)
    (run / "episodes.jsonl").write_text("".join(lines[:2]))
    arena.evaluate("random", "debug/reach", episodes=4, max_steps=10, resume=run, tracker="tensorboard")
    assert [s for s, _ in _scalars(run / "tensorboard")["episode/success"]] == [3, 4]


def test_missing_package_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = trackers.importlib.util.find_spec
    monkeypatch.setattr(
        trackers.importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("tensorboard", "wandb") else real(name, *a),
    )
    with pytest.raises(ConfigError, match=re.escape('pip install "arena-core[wandb]"')):
        arena.evaluate("random", "debug/reach", episodes=1, output=tmp_path / "w", tracker="wandb")
    rc = main(eval_argv("random", "debug/reach", tmp_path / "run", "--episodes", "1", "--tracker", "tensorboard"))
    assert rc == 2
    assert 'the tensorboard package is not installed; pip install "arena-core[tensorboard]"' in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before the run started


def test_unknown_tracker_and_blocked_plugin(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--tracker: expected one of tensorboard, wandb, got 'mlflow'"):
        arena.evaluate("random", "debug/reach", write=False, tracker="mlflow")
    pytest.importorskip("tensorboard")
    plugins = arena.plugins.load_plugins(blocked=["trackers"])
    with pytest.raises(ConfigError, match="'trackers' is blocked"):
        arena.evaluate("random", "debug/reach", output=tmp_path / "r", tracker="tensorboard", plugins=plugins)


def test_wandb_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb", reason='wandb is not installed (pip install "arena-core[wandb]")')
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = tmp_path / "run"
    arena.evaluate("random", "debug/reach", episodes=2, max_steps=10, output=run, tracker="wandb")
    assert trackers.active_count() == 0
    assert list((run / "wandb").glob("offline-run-*/run-*.wandb"))


# -- a third party's own tracker ---------------------------------------------------------------------
def _docs_observer() -> str:
    """The observer plugin shown in docs/results.md (the block after 'csv_tracker.py')."""
    doc = (ROOT / "docs" / "results.md").read_text()
    m = re.search(r"```python\n# csv_tracker\.py\n(.*?)```", doc, re.S)
    assert m, "docs/results.md must show csv_tracker.py"
    return m.group(1)


def test_the_documented_third_party_tracker_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    info = site / "csv_tracker-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: csv-tracker\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[arena]\ncsv = csv_tracker\n")
    (site / "csv_tracker.py").write_text(textwrap.dedent(_docs_observer()))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("ARENA_PLUGINS", "csv")
    arena.plugins.reset_entry_point_cache()
    try:
        run = tmp_path / "run"
        arena.evaluate("random", "debug/suite", episodes=2, max_steps=10, output=run)
        rows = (run / "metrics.csv").read_text().splitlines()
        assert rows == [f"{r.task},{r.episode_index},{int(r.success)},{r.length}" for r in read_records(run)]
    finally:
        sys.modules.pop("csv_tracker", None)
        arena.plugins.reset_entry_point_cache()
