"""The episode ledger: each planned episode recorded exactly once, lost episodes re-run with their seeds,
task-affine hand-out, under arbitrary interleavings of starts, ends and losses."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.evaluator import plan_episodes
from arena.ledger import LOST_PREFIX, EpisodeLedger


def make(tasks=("a", "b", "c"), episodes=3, slots=2, retries=2):  # noqa: ANN001, ANN201
    recorded = []
    ledger = EpisodeLedger(
        plan_episodes(list(tasks), episodes, 0), slots, lambda s, ep, r, rec: recorded.append(r), retries=retries
    )
    return ledger, recorded


def test_free_slots_spread_over_tasks_then_keep_their_task() -> None:
    ledger, _ = make(slots=3)
    first = [ledger.take(s).task for s in range(3)]
    assert first == ["a", "b", "c"]  # each slot takes the task with the most episodes left
    ledger.finish(0, True, None, False)
    assert ledger.take(0).task == "a"  # its simulator holds "a": same-task reset, no scene rebuild


def test_a_slot_whose_task_ran_out_takes_the_task_with_most_left() -> None:
    ledger, _ = make(tasks=("a", "b"), episodes=3, slots=2)
    assert [ledger.take(0).task, ledger.take(1).task] == ["a", "b"]
    for _ in range(2):
        ledger.finish(0, True, None, False)
        assert ledger.take(0).task == "a"
    ledger.finish(0, True, None, False)
    assert ledger.left("a") == 0
    assert ledger.take(0).task == "b"


def test_recording_twice_is_refused() -> None:
    ledger, recorded = make(tasks=("a",), episodes=1, slots=1)
    ledger.take(0)
    ledger.finish(0, True, None, False)
    with pytest.raises(RuntimeError, match="runs no episode"):
        ledger.finish(0, True, None, False)
    assert len(recorded) == 1 and ledger.done


def test_a_lost_episode_runs_again_with_its_seed_and_is_not_recorded() -> None:
    ledger, recorded = make(tasks=("a",), episodes=2, slots=1)
    ep = ledger.take(0)
    assert ledger.lose(0, "worker died: exit code -9 (SIGKILL)") is None
    assert recorded == [] and ledger.pending == 2
    again = ledger.take(0)
    assert again == ep  # same episode, same seed, first in line
    record = ledger.finish(0, True, None, False)
    assert record.seed == ep.seed and record.timings["attempts"] == 2


def test_retries_run_out_into_an_error_naming_the_cause() -> None:
    ledger, recorded = make(tasks=("a",), episodes=1, slots=1, retries=2)
    for _ in range(2):
        ledger.take(0)
        assert ledger.lose(0, "worker timed out") is None
    ledger.take(0)
    record = ledger.lose(0, "worker timed out")
    assert record is not None and record.error and not record.success
    assert (
        record.failure_reason.startswith(f"{LOST_PREFIX}: worker timed out") and "3 attempts" in record.failure_reason
    )
    assert recorded == [record] and ledger.done


def test_a_plan_naming_an_episode_twice_is_refused() -> None:
    plan = plan_episodes(["a"], 1, 0)
    with pytest.raises(ValueError, match="twice"):
        EpisodeLedger(plan + plan, 1, lambda *a: None)


@settings(max_examples=150, deadline=None)
@given(
    tasks=st.integers(1, 4),
    episodes=st.integers(1, 4),
    slots=st.integers(1, 5),
    retries=st.integers(0, 2),
    ops=st.lists(st.tuples(st.integers(0, 4), st.sampled_from(["ok", "fail", "error", "lost"])), max_size=200),
)
def test_every_interleaving_records_each_planned_episode_once(tasks, episodes, slots, retries, ops) -> None:  # noqa: ANN001
    names = [f"t{i}" for i in range(tasks)]
    plan = plan_episodes(names, episodes, 1)
    calls = []
    ledger = EpisodeLedger(plan, slots, lambda s, ep, r, rec: calls.append((s, ep, r)), retries=retries)
    for s in range(slots):
        ledger.take(s)

    def end(slot: int, kind: str) -> None:
        if kind == "ok":
            ledger.finish(slot, True, None, False)
        elif kind == "fail":
            ledger.finish(slot, False, "max_steps", False)
        elif kind == "error":
            ledger.finish(slot, False, "env_error: x", True)
        else:
            ledger.lose(slot, "worker died")
        ledger.take(slot)

    for slot, kind in ops:  # the order episodes end in, as a pipelined loop may produce it
        slot %= slots
        if ledger.active[slot]:
            end(slot, kind)
    while not ledger.done:  # drain: every running episode ends, lost ones eventually exhaust retries
        for slot in range(slots):
            if ledger.active[slot]:
                end(slot, "lost" if len(calls) % 3 == 0 else "ok")
    keys = Counter((r.task, r.episode_index) for _, _, r in calls)
    assert keys == Counter({(e.task, e.index): 1 for e in plan})
    seeds = {(e.task, e.index): e.seed for e in plan}
    assert all(r.seed == seeds[(r.task, r.episode_index)] for _, _, r in calls)
    assert all(ep.seed == r.seed and ep.index == r.episode_index for _, ep, r in calls)
    assert ledger.unrecorded() == [] and ledger.recorded == len(plan)
    for _, _, r in calls:
        if r.failure_reason and r.failure_reason.startswith(LOST_PREFIX):
            assert r.timings["attempts"] == retries + 1


def timed(ledger: EpisodeLedger, slot: int, start_s: float, run_s: float) -> None:
    """Book a start of ``start_s`` and end the episode as if it had run ``run_s`` after it."""
    ledger.start_took(slot, start_s)
    ledger.started[slot] -= start_s + run_s
    ledger.finish(slot, True, None, False)


def test_a_free_slot_idles_when_the_holder_frees_before_a_scene_build_would_be_done() -> None:
    ledger, recorded = make(tasks=("a", "b"), episodes=3, slots=2)
    assert [ledger.take(0).task, ledger.take(1).task] == ["a", "b"]
    timed(ledger, 1, 0.2, 0.05)  # "b": a build of 0.2 s, then an episode of 0.05 s
    assert ledger.take(1).task == "b"
    timed(ledger, 1, 0.01, 0.05)  # a same-task start: 0.01 s, so a build costs ~0.19 s more
    assert ledger.take(1).task == "b"
    timed(ledger, 0, 0.2, 0.05)
    assert ledger.take(0).task == "a"
    timed(ledger, 1, 0.01, 0.05)  # "b" ran out; "a" has one episode left, and slot 0 holds "a"
    assert ledger.take(1) is None and ledger.pending == 1 and not ledger.done
    timed(ledger, 0, 0.01, 0.05)
    assert ledger.take(0).task == "a"  # the holder runs it without a build
    ledger.finish(0, True, None, False)
    assert ledger.done and len(recorded) == 6 and ledger.scene_builds == 2


def test_a_free_slot_builds_when_episodes_outlast_a_scene_build() -> None:
    ledger, _ = make(tasks=("a", "b"), episodes=3, slots=2)
    assert [ledger.take(0).task, ledger.take(1).task] == ["a", "b"]
    timed(ledger, 0, 0.2, 50.0)  # LIBERO-like: a build of 0.2 s, episodes of 50 s
    assert ledger.take(0).task == "a"
    timed(ledger, 1, 0.01, 50.0)
    while ledger.left("b"):  # slot 1 runs out "b"
        assert ledger.take(1).task == "b"
        timed(ledger, 1, 0.01, 50.0)
    assert ledger.take(1).task == "a"  # slot 0 frees in ~50 s; building "a" takes 0.2 s


def test_a_free_slot_builds_when_the_holder_would_run_what_is_left_later() -> None:
    plan = plan_episodes(["a"], 8, 0) + plan_episodes(["b"], 4, 0)
    ledger = EpisodeLedger(plan, 2, lambda *a: None)
    assert [ledger.take(0).task, ledger.take(1).task] == ["a", "b"]
    timed(ledger, 0, 0.2, 0.05)  # a build costs ~0.19 s more than a start, an episode 0.05 s
    assert ledger.take(0).task == "a"
    timed(ledger, 1, 0.01, 0.05)
    while ledger.left("b"):  # slot 1 runs out "b"
        assert ledger.take(1).task == "b"
        timed(ledger, 1, 0.01, 0.05)
    assert ledger.left("a") == 6  # alone, slot 0 needs ~0.35 s; a build and one episode take ~0.24 s
    assert ledger.take(1).task == "a"
