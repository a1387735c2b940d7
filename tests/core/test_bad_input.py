"""User mistakes get one-line errors naming the flag; damaged run directories are reported, not miscounted."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from arena_core_testlib import Factory, evaluate_records

import arena
from arena.cli import main
from arena.errors import ConfigError


def run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--output", "{file}"], "--output: expected a run directory, got the file"),
        (["--output", "/proc/no/such/run"], "--output: cannot create the run directory /proc/no/such/run"),
        (["--resume", "{file}"], "--resume: expected a run directory, got the file"),
        (["--resume", "{missing}"], "--resume: no run directory at"),
    ],
)
def test_output_and_resume_pointing_at_the_wrong_place(flags, message, tmp_path, capsys) -> None:  # noqa: ANN001
    (tmp_path / "afile").write_text("x")
    flags = [f.format(file=tmp_path / "afile", missing=tmp_path / "nope") for f in flags]
    code, text = run(
        ["eval", "--policy", "zero", "--env", "debug/reach", "--episodes", "1", "--no-progress", *flags], capsys
    )
    assert code == 2 and message in text and "Traceback" not in text


def test_resume_of_a_run_with_a_damaged_config(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "run"
    arena.evaluate("zero", "debug/reach", episodes=1, output=out)
    (out / "config.json").write_text('{"policy": "zero", ')
    code, text = run(
        ["eval", "--policy", "zero", "--env", "debug/reach", "--episodes", "1", "--resume", str(out)], capsys
    )
    assert code == 2 and "--resume:" in text and "config.json is damaged" in text and "Traceback" not in text


def test_damaged_episode_rows_are_reported_and_rerun_never_miscounted(tmp_path: Path, caplog) -> None:  # noqa: ANN001
    out = tmp_path / "run"
    factory = Factory(action_horizon=2)
    arena.evaluate(factory, "debug/suite", episodes=3, output=out)
    lines = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    lines[0]["success"] = "false"  # mistyped: a truthy string must not count as a success
    dup = dict(lines[1])
    dup["success"] = not dup["success"]  # a second record of the same episode
    foreign = dict(lines[2], episode_index=99)  # not in the plan
    text = "\n".join(json.dumps(d) for d in [*lines, dup, foreign]) + "\n"
    (out / "episodes.jsonl").write_text(text)
    with caplog.at_level(logging.WARNING):
        summary = arena.evaluate(Factory(action_horizon=2), "debug/suite", episodes=3, resume=out)
    log = caplog.text
    assert "field 'success': expected bool, got 'false'" in log
    assert "is recorded again" in log and "not in this run's plan" in log
    _, fresh = evaluate_records(Factory(action_horizon=2), "debug/suite", episodes=3)
    assert summary.overall.episodes == 6
    assert summary.overall.successes == sum(r.success for r in fresh)  # nothing counted twice or mistyped
    rerun = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()][len(lines) + 2 :]
    assert [(d["task"], d["episode_index"]) for d in rerun] == [(lines[0]["task"], lines[0]["episode_index"])]


def test_a_record_with_a_missing_field_is_not_a_record() -> None:
    from arena.results import EpisodeRecord

    with pytest.raises(ValueError, match="'seed' is missing"):
        EpisodeRecord.from_dict({"task": "t", "episode_index": 0, "success": True, "length": 1})
    with pytest.raises(ValueError, match="'episode_index': expected int, got True"):
        EpisodeRecord.from_dict({"task": "t", "episode_index": True, "seed": 1, "success": True, "length": 1})


@pytest.mark.parametrize("value", [0, -1])
def test_served_batch_limits_that_mean_nothing_are_refused(value: int, capsys) -> None:  # noqa: ANN001
    from arena.remote.serving import serve_main

    with pytest.raises(SystemExit) as exc:
        serve_main("arena-x serve", "test", ["--policy", "zero", "--env", "debug/reach", "--max-batch", str(value)],
                   lambda p: None, lambda s, a: 0)  # fmt: skip
    assert exc.value.code == 2
    assert f"--max-batch: expected an integer >= 1, got {value}" in capsys.readouterr().err


def test_evaluate_refuses_a_non_integer_retry_count() -> None:
    with pytest.raises(ConfigError, match="--episode-retries: expected an integer >= 0, got -1"):
        arena.evaluate("zero", "debug/reach", episodes=1, write=False, episode_retries=-1)
