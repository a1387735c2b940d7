"""Results on disk: episodes.jsonl flushed per episode, summary.json schema, Wilson intervals, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from arena_core_testlib import Factory, outcomes, read_jsonl

import arena
from arena.errors import ConfigError
from arena.evaluator import plan_episodes
from arena.results import EpisodeRecord, RunDir, Stats, summarize, wilson_interval
from arena.table import summary_table

# -- Wilson interval -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "successes, n, lo, hi",
    [
        # z = 1.959964, z^2 = 3.841459; centre = (p + z^2/2n) / (1 + z^2/n),
        # half = z * sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n)
        # 0/10:  centre = 0.192073/1.384146 = 0.138767, half = 0.138767      -> [0, 0.277533]
        (0, 10, 0.0, 0.277533),
        # 5/10:  centre = 0.5, half = 1.959964 * 0.186021 / 1.384146 = 0.263407 -> [0.236593, 0.763407]
        (5, 10, 0.236593, 0.763407),
        # 10/10: mirror image of 0/10                                          -> [0.722467, 1]
        (10, 10, 0.722467, 1.0),
        # 1/10:  centre = 0.292073/1.384146 = 0.211013, half = 0.193137        -> [0.017876, 0.404150]
        (1, 10, 0.017876, 0.404150),
    ],
)
def test_wilson_interval_hand_computed(successes: int, n: int, lo: float, hi: float) -> None:
    got = wilson_interval(successes, n)
    assert got == pytest.approx((lo, hi), abs=2e-6)


def test_wilson_interval_edges_are_exact() -> None:
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)


def rec(task: str, i: int, success: bool, length: int = 5, error: bool = False) -> EpisodeRecord:
    reason = None if success else ("env_error: x" if error else "max_steps")
    return EpisodeRecord(task, i, 100 + i, success, length, reason, error)


def test_stats_and_summarize() -> None:
    records = [rec("b", 0, True, 4), rec("b", 1, False, 10), rec("a", 0, False, 3, error=True)]
    s = summarize(records, ["a", "b", "c"], {"k": 1}, {"python": "3"})
    assert list(s.tasks) == ["a", "b", "c"]  # the env's task order, empty tasks included
    assert s.tasks["b"] == Stats(2, 1, 0.5, wilson_interval(1, 2), 0, 7.0)
    assert s.tasks["a"] == Stats(1, 0, 0.0, wilson_interval(0, 1), 1, 3.0)
    assert s.tasks["c"] == Stats(0, 0, 0.0, (0.0, 1.0), 0, 0.0)
    assert (s.overall.episodes, s.overall.successes, s.overall.errors) == (3, 1, 1)
    assert s.overall.success_rate == pytest.approx(1 / 3)
    assert s.overall.mean_length == pytest.approx(17 / 3)


def test_summary_table_shows_tasks_and_overall() -> None:
    s = summarize([rec("a", i, i < 5) for i in range(10)], ["a"], {}, {})
    table = summary_table(s)
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["task", "episodes", "successes"]
    assert lines[2].split()[:4] == ["a", "10", "5", "0.500"]
    assert lines[3].startswith("OVERALL")
    assert "[0.237, 0.763]" in table


# -- the run directory -------------------------------------------------------------------------------


def test_episodes_jsonl_line_is_on_disk_when_the_episode_ends(tmp_path: Path) -> None:
    out = tmp_path / "run"
    seen = []

    def on_episode(record: EpisodeRecord, done: int, total: int) -> None:
        lines = read_jsonl(out / "episodes.jsonl")
        assert len(lines) == done
        assert lines[-1] == json.loads(json.dumps(record.to_dict()))
        seen.append((done, total))

    arena.evaluate(Factory(), "debug/suite", episodes=3, num_envs=2, output=out, on_episode=on_episode)
    assert seen == [(i, 6) for i in range(1, 7)]
    assert len((out / "episodes.jsonl").read_text().splitlines()) == 6


def test_observer_hook_sees_the_line_on_disk(tmp_path: Path, plugins) -> None:
    class Observer:
        def __init__(self) -> None:
            self.lines: list[int] = []

        @arena.hookimpl
        def arena_episode_end(self, run, record):
            data = read_jsonl(Path(run.run_dir) / "episodes.jsonl")
            assert data[-1]["episode_index"] == record.episode_index and data[-1]["task"] == record.task
            self.lines.append(len(data))

    obs = Observer()
    plugins.pm.register(obs, name="observer")
    arena.evaluate("zero", "debug/reach", episodes=4, max_steps=3, output=tmp_path / "run", plugins=plugins)
    assert obs.lines == [1, 2, 3, 4]


def test_summary_json_schema(tmp_path: Path) -> None:
    out = tmp_path / "run"
    summary = arena.evaluate(Factory(), "debug/suite", episodes=3, output=out, seed=9)
    data = json.loads((out / "summary.json").read_text())
    assert {"overall", "tasks", "config", "versions"} <= set(data)
    stat_keys = {"episodes", "successes", "success_rate", "ci95", "errors", "mean_length"}
    assert set(data["overall"]) == stat_keys
    assert set(data["tasks"]) == {"reach", "reach-far"}
    for stats in [data["overall"], *data["tasks"].values()]:
        assert set(stats) == stat_keys
        assert isinstance(stats["ci95"], list) and len(stats["ci95"]) == 2
        lo, hi = stats["ci95"]
        assert 0.0 <= lo <= stats["success_rate"] <= hi <= 1.0
    assert data["overall"]["episodes"] == 6 and data["tasks"]["reach"]["episodes"] == 3
    assert data["overall"]["successes"] == 6  # the goal-seeking policy always arrives
    assert data["overall"]["ci95"] == pytest.approx(list(wilson_interval(6, 6)))
    assert data["config"]["env"] == "debug/suite"
    assert data["config"]["seed"] == 9
    assert data["config"]["episodes"] == 3
    assert data["config"]["env_config"] == {
        "image_size": 32,
        "crash_episodes": [],
        "slots": "array",
        "step_cost_ms": 0.0,
    }
    assert {"python", "arena-core", "numpy"} <= set(data["versions"])
    assert data["versions"]["arena-core"] == arena.__version__
    assert data["run_dir"] == str(out)
    assert summary.to_dict() == data
    lines = read_jsonl(out / "episodes.jsonl")
    assert len(lines) == 6
    assert set(lines[0]) == {
        "task",
        "episode_index",
        "seed",
        "success",
        "length",
        "failure_reason",
        "error",
        "timings",
        "env_slot",
    }
    assert set(lines[0]["timings"]) == {"wall_s", "env_s", "infer_s", "inferences"}


def test_config_json_leaves_out_num_envs(tmp_path: Path) -> None:
    arena.evaluate("zero", "debug/reach", episodes=1, max_steps=2, output=tmp_path / "run", num_envs=2)
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert "num_envs" not in stored
    assert stored["policy"] == "zero" and stored["max_steps"] == 2


def test_output_holding_episodes_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    arena.evaluate("zero", "debug/reach", episodes=2, max_steps=2, output=out)
    before = (out / "episodes.jsonl").read_text()
    with pytest.raises(ConfigError) as err:
        arena.evaluate("zero", "debug/reach", episodes=2, max_steps=2, output=out)
    assert f"--output: {out} already holds episodes" in str(err.value)
    assert f"--resume {out}" in str(err.value)
    assert (out / "episodes.jsonl").read_text() == before


def test_output_with_an_empty_episodes_file_is_accepted(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "episodes.jsonl").write_text("")
    arena.evaluate("zero", "debug/reach", episodes=2, max_steps=2, output=out)
    assert len(read_jsonl(out / "episodes.jsonl")) == 2


def test_load_records_skips_broken_lines_and_duplicates(tmp_path: Path) -> None:
    rd = RunDir(tmp_path)
    a, b = rec("t", 0, True), rec("t", 1, False)
    dup = rec("t", 0, False)
    text = (
        "\n".join(json.dumps(r.to_dict()) for r in (a, b, dup))
        + "\nnot json\n"
        + json.dumps(rec("t", 2, True).to_dict())[:20]
    )
    rd.episodes_path.write_text(text)
    loaded = sorted(rd.load_records(), key=lambda r: r.episode_index)
    assert loaded == [a, b]  # the first of duplicates kept; the corrupt and truncated lines skipped


# -- resume --------------------------------------------------------------------------------------------

RUN = dict(episodes=4, seed=3, policy_config={"action_horizon": 2}, max_steps=20)


def run_random(**kw):
    return arena.evaluate("random", "debug/suite", **{**RUN, **kw})


@pytest.fixture
def reference(tmp_path: Path) -> list[tuple]:
    """The records of an uninterrupted run."""
    run_random(output=tmp_path / "reference", num_envs=2)
    records = read_jsonl(tmp_path / "reference" / "episodes.jsonl")
    assert len(records) == 8
    return outcomes(records)


def test_resume_after_keyboard_interrupt_equals_an_uninterrupted_run(tmp_path: Path, reference) -> None:
    out = tmp_path / "run"

    def stop_after_three(record, done, total):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_random(output=out, num_envs=2, on_episode=stop_after_three)
    assert len(read_jsonl(out / "episodes.jsonl")) == 3
    assert not (out / "summary.json").exists()

    ran = []
    summary = run_random(resume=out, num_envs=3, on_episode=lambda r, d, t: ran.append((d, t)))
    assert [d for d, _ in ran] == [4, 5, 6, 7, 8] and {t for _, t in ran} == {8}  # only the 5 missing episodes ran
    lines = read_jsonl(out / "episodes.jsonl")
    assert len(lines) == 8  # no duplicates
    assert outcomes(lines) == reference
    assert summary.overall.episodes == 8
    planned = {(e.task, e.index, e.seed) for e in plan_episodes(["reach", "reach-far"], 4, 3)}
    assert {(o[0], o[1], o[2]) for o in outcomes(lines)} == planned
    assert json.loads((out / "summary.json").read_text())["overall"]["episodes"] == 8


def test_resume_after_a_truncated_last_line(tmp_path: Path, reference) -> None:
    out = tmp_path / "run"
    run_random(output=out)
    path = out / "episodes.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:5]) + lines[5][: len(lines[5]) // 2])  # killed while writing line 6
    summary = run_random(resume=out)
    final = read_jsonl(path)  # every line parses: the partial one was cut, not appended to
    assert len(final) == 8
    assert outcomes(final) == reference
    assert summary.overall.episodes == 8


def test_resume_of_a_complete_run_runs_nothing(tmp_path: Path, reference) -> None:
    out = tmp_path / "run"
    run_random(output=out)
    ran = []
    summary = run_random(resume=out, on_episode=lambda *a: ran.append(a))
    assert ran == []
    assert summary.overall.episodes == 8
    assert outcomes(read_jsonl(out / "episodes.jsonl")) == reference


@pytest.mark.parametrize(
    "change, field",
    [
        ({"seed": 4}, "seed: stored 3, now 4"),
        ({"episodes": 5}, "episodes: stored 4, now 5"),
        ({"policy_config": {"action_horizon": 3}}, "policy_config.action_horizon: stored 2, now 3"),
        ({"max_steps": 21}, "max_steps: stored 20, now 21"),
        ({"env_config": {"crash_episodes": "1"}}, "env_config.crash_episodes: stored [], now [1]"),
    ],
)
def test_resume_with_a_different_config_is_refused(tmp_path: Path, change: dict, field: str) -> None:
    out = tmp_path / "run"
    run_random(output=out, episodes=4)
    before = (out / "episodes.jsonl").read_text()
    with pytest.raises(ConfigError) as err:
        run_random(resume=out, **change)
    assert "--resume: the config differs" in str(err.value)
    assert field in str(err.value)
    assert (out / "episodes.jsonl").read_text() == before


def test_resume_with_tuple_config_values(tmp_path: Path) -> None:
    # tuples are stored as JSON lists: the same config must still compare equal on resume
    out = tmp_path / "run"
    run = dict(episodes=4, max_steps=5, env_config={"crash_episodes": (1, 2)})

    def stop_after_two(record, done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        arena.evaluate("zero", "debug/reach", output=out, on_episode=stop_after_two, **run)
    summary = arena.evaluate("zero", "debug/reach", resume=out, **run)
    assert summary.overall.episodes == 4 and summary.overall.errors == 2


def test_resume_needs_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="has no config.json; is it a run directory"):
        run_random(resume=tmp_path)


def test_output_and_resume_must_agree(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="name different directories"):
        run_random(output=tmp_path / "a", resume=tmp_path / "b")


def _remote_policy():
    import attrs
    from arena_core_testlib import GoalSeekingPolicy

    @attrs.define
    class RemoteConfig:
        host: str = attrs.field(default="a", metadata={"identity": False, "help": "server"})
        token: str | None = attrs.field(default=None, metadata={"identity": False, "secret": True})
        gain: float = attrs.field(default=1.0)
        action_horizon: int = 1
        execution_horizon: int | None = None

    class Remote(GoalSeekingPolicy):
        Config = RemoteConfig

    return Remote


def test_resume_accepts_changed_non_identity_fields_and_secrets_never_reach_disk(tmp_path: Path) -> None:
    remote = _remote_policy()
    run = tmp_path / "run"
    stop = {"n": 0}

    def interrupt(record, done, total):
        stop["n"] += 1
        if stop["n"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        arena.evaluate(
            remote,
            "debug/reach",
            episodes=4,
            output=run,
            on_episode=interrupt,
            policy_config={"host": "a", "token": "s3cret"},
        )
    stored = json.loads((run / "config.json").read_text())
    assert "host" not in stored["policy_config"] and "token" not in stored["policy_config"]
    # another server and token: same episodes, so resuming is allowed
    summary = arena.evaluate(
        remote, "debug/reach", episodes=4, resume=run, policy_config={"host": "b", "token": "other"}
    )
    assert summary.overall.episodes == 4
    text = (run / "summary.json").read_text()
    assert "s3cret" not in text and "other" not in text
    assert json.loads(text)["config"]["policy_config"] == {
        "host": "b",
        "token": "<redacted>",
        "gain": 1.0,
        "action_horizon": 1,
        "execution_horizon": None,
    }
    # a field that does decide outcomes is still compared
    with pytest.raises(ConfigError, match=r"policy_config.gain: stored 1.0, now 2.0"):
        arena.evaluate(remote, "debug/reach", episodes=4, resume=run, policy_config={"gain": 2.0})
