"""``arena compare``: per-task success side by side, differences and their significance."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path
from statistics import NormalDist

import pytest
from arena_core_testlib import Greedy

import arena
from arena.cli import main
from arena.compare import compare_runs, comparison_table
from arena.errors import ConfigError
from arena.stats import compare_proportions, fisher_exact, two_proportion_z


# -- the statistics ----------------------------------------------------------------------------------
def _fisher_reference(s1: int, n1: int, s2: int, n2: int) -> float:
    """Exact rational enumeration of every 2x2 table with the same margins."""
    k = s1 + s2
    probs = {
        a: Fraction(math.comb(n1, a) * math.comb(n2, k - a), math.comb(n1 + n2, k))
        for a in range(max(0, k - n2), min(n1, k) + 1)
    }
    return float(sum(p for p in probs.values() if p <= probs[s1]))


def test_fisher_matches_known_values_and_exact_enumeration() -> None:
    assert fisher_exact(3, 4, 1, 4) == pytest.approx(34 / 70, abs=1e-12)  # Fisher's tea-tasting table
    assert fisher_exact(10, 10, 0, 10) == pytest.approx(2 / math.comb(20, 10), rel=1e-12)
    assert fisher_exact(5, 10, 5, 10) == pytest.approx(1.0)
    for s1, n1, s2, n2 in [(8, 10, 1, 6), (0, 3, 3, 3), (7, 12, 2, 9), (1, 20, 6, 20), (13, 15, 9, 17)]:
        assert fisher_exact(s1, n1, s2, n2) == pytest.approx(_fisher_reference(s1, n1, s2, n2), rel=1e-9)
        assert fisher_exact(s1, n1, s2, n2) == pytest.approx(fisher_exact(s2, n2, s1, n1), rel=1e-9)


def test_z_test_matches_the_normal_distribution() -> None:
    for s1, n1, s2, n2 in [(50, 100, 65, 100), (30, 40, 20, 40), (12, 50, 30, 60)]:
        p = (s1 + s2) / (n1 + n2)
        z = (s2 / n2 - s1 / n1) / math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
        assert two_proportion_z(s1, n1, s2, n2) == pytest.approx(2 * (1 - NormalDist().cdf(abs(z))), rel=1e-9)
    assert two_proportion_z(0, 10, 0, 20) == 1.0 and two_proportion_z(10, 10, 20, 20) == 1.0


def test_small_expected_counts_switch_to_fisher() -> None:
    big = compare_proportions(50, 100, 65, 100)
    assert big.method == "z-test" and big.significant and big.difference == pytest.approx(0.15)
    small = compare_proportions(9, 10, 4, 10)  # expected failures 3.5 < 5
    assert small.method == "fisher"
    assert small.p_value == pytest.approx(_fisher_reference(9, 10, 4, 10))
    assert small.significant == (small.p_value < 0.05)
    assert not compare_proportions(5, 10, 6, 10).significant
    with pytest.raises(ValueError):
        compare_proportions(3, 0, 1, 2)


# -- runs --------------------------------------------------------------------------------------------
@pytest.fixture
def runs(tmp_path: Path) -> dict[str, Path]:
    out = {"good": tmp_path / "good", "bad": tmp_path / "bad", "reach-only": tmp_path / "reach-only"}
    arena.evaluate(Greedy, "debug/suite", episodes=10, output=out["good"])  # 100% success
    arena.evaluate("zero", "debug/suite", episodes=10, output=out["bad"])  # 0%
    arena.evaluate(Greedy, "debug/reach", episodes=4, output=out["reach-only"])
    return out


def test_a_real_difference_is_significant_and_no_difference_is_not(runs: dict[str, Path]) -> None:
    cmp = compare_runs([runs["good"], runs["bad"], runs["good"]])
    rows = {r.task: r for r in cmp.rows}
    assert list(rows) == ["reach", "reach-far", "OVERALL"]
    for task in ("reach", "reach-far"):
        worse, same = rows[task].tests
        assert worse is not None and same is not None
        assert worse.difference == -1.0 and worse.significant and worse.method == "z-test"  # expected counts 5
        assert worse.p_value == pytest.approx(two_proportion_z(10, 10, 0, 10))
        assert same.difference == 0.0 and not same.significant and same.p_value == 1.0
    overall = rows["OVERALL"].tests[0]
    assert overall is not None and overall.significant


def test_a_task_missing_from_a_run_is_shown_as_na(runs: dict[str, Path]) -> None:
    cmp = compare_runs([runs["bad"], runs["reach-only"]])
    rows = {r.task: r for r in cmp.rows}
    assert rows["reach-far"].stats[1] is None and rows["reach-far"].tests == [None]
    assert rows["reach"].tests[0] is not None and rows["reach"].tests[0].method == "fisher"  # 10 vs 4 episodes
    assert cmp.missing == {"reach-far": ["B"]}
    table = comparison_table(cmp)
    line = next(line for line in table.splitlines() if line.startswith("reach-far"))
    assert line.count("n/a") >= 3
    assert "note: task 'reach-far' is missing from B (shown as n/a)" in table


def test_cli_table_and_json(runs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(runs["good"]), str(runs["bad"])]) == 0
    out = capsys.readouterr().out
    assert "A (baseline)" in out and "-100.0 pp" in out and "YES" in out
    assert f"A = {runs['good']}" in out and f"B = {runs['bad']}" in out

    assert main(["compare", str(runs["good"]), str(runs["reach-only"]), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["baseline"] == str(runs["good"]) and data["alpha"] == 0.05
    reach = data["tasks"]["reach"]
    assert [r["successes"] for r in reach["runs"]] == [10, 4]
    assert reach["vs_baseline"][0]["run"] == "B" and reach["vs_baseline"][0]["significant"] is False
    assert data["tasks"]["reach-far"]["runs"][1] is None and data["tasks"]["reach-far"]["vs_baseline"] == [None]
    assert data["missing"] == {"reach-far": ["B"]}


def test_missing_run_dir_and_too_few_runs_are_clear_errors(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compare", str(runs["good"]), str(tmp_path / "nope")]) == 2
    assert f"{tmp_path / 'nope'}: no such run directory" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="at least two run directories"):
        compare_runs([runs["good"]])
    with pytest.raises(ConfigError, match="--alpha"):
        compare_runs([runs["good"], runs["bad"]], alpha=1.5)


def test_an_interrupted_run_is_compared_on_its_recorded_episodes(runs: dict[str, Path]) -> None:
    bad = runs["bad"]
    lines = (bad / "episodes.jsonl").read_text().splitlines(keepends=True)
    (bad / "summary.json").unlink()
    (bad / "episodes.jsonl").write_text("".join(lines[:6]) + lines[6][:25])  # killed mid-write
    cmp = compare_runs([runs["good"], bad])
    rows = {r.task: r for r in cmp.rows}
    assert rows["reach"].stats[1] is not None and rows["reach"].stats[1].episodes == 6
    assert rows["reach-far"].stats[1] is None  # no episode of it recorded yet
