"""Action schedulers against hand-computed action sequences.

Chunks are built so every action names where it came from: for env slot e
and the q-th query (counted over the whole batch), action j of the chunk is
``100*e + 10*q + j`` (the temporal-ensembling tests use ``100*q + 10*j``).
Reading an executed action therefore tells which query and which chunk
position it is.
"""

from __future__ import annotations

import numpy as np
import pytest

from arena.config import make_config
from arena.errors import ConfigError, PolicyError
from arena.policy import NoConfig
from arena.schedulers import (
    ChunkedConfig,
    ChunkedScheduler,
    EnsembleConfig,
    PassThroughScheduler,
    SyncedBatchScheduler,
    TemporalEnsembleScheduler,
)


class Driver:
    """Plays the evaluator's part: query the slots in need_mask, then pop one action per active slot."""

    def __init__(self, scheduler, num_envs: int, horizon: int, q_step: float = 10, j_step: float = 1) -> None:
        self.s = scheduler
        self.n = num_envs
        self.h = horizon
        self.q_step = q_step
        self.j_step = j_step
        self.queries = 0
        self.masks: list[list[bool]] = []

    def chunk(self, env_ids: np.ndarray) -> np.ndarray:
        q = self.queries
        self.queries += 1
        j = np.arange(self.h, dtype=np.float32)
        return np.stack([100 * e + self.q_step * q + self.j_step * j for e in env_ids])[:, :, None].astype(np.float32)

    def step(self, active: list[bool] | None = None) -> list[float]:
        act = np.ones(self.n, bool) if active is None else np.asarray(active, bool)
        need = self.s.need_mask(act)
        self.masks.append(need.tolist())
        if need.any():
            ids = np.flatnonzero(need)
            self.s.push(self.chunk(ids), ids)
        return self.s.pop(np.flatnonzero(act))[:, 0].tolist()


def chunked(execution: int | None, horizon: int, num_envs: int = 1, suggested: int | None = None) -> ChunkedScheduler:
    return ChunkedScheduler(ChunkedConfig(execution), num_envs, 1, horizon, suggested_execution=suggested)


# -- chunked -----------------------------------------------------------------------------------------


def test_chunked_horizon4_execution2_queries_every_second_step() -> None:
    d = Driver(chunked(2, 4), 1, 4)
    actions = [d.step()[0] for _ in range(6)]
    # query 0 at step 0 -> actions 0, 1 (2 and 3 dropped); query 1 at step 2 -> 10, 11; query 2 at step 4 -> 20, 21
    assert actions == [0.0, 1.0, 10.0, 11.0, 20.0, 21.0]
    assert d.masks == [[True], [False], [True], [False], [True], [False]]
    assert d.queries == 3


def test_chunked_default_executes_the_whole_chunk() -> None:
    s = chunked(None, 3)
    assert s.execution_horizon == 3
    d = Driver(s, 1, 3)
    assert [d.step()[0] for _ in range(7)] == [0.0, 1.0, 2.0, 10.0, 11.0, 12.0, 20.0]


def test_chunked_two_envs_keep_their_own_rows() -> None:
    d = Driver(chunked(2, 3, num_envs=2), 2, 3)
    assert [d.step() for _ in range(4)] == [[0.0, 100.0], [1.0, 101.0], [10.0, 110.0], [11.0, 111.0]]


@pytest.mark.parametrize("execution", [5, 9])
def test_execution_horizon_above_action_horizon_is_refused(execution: int) -> None:
    with pytest.raises(ConfigError) as err:
        chunked(execution, 4)
    msg = str(err.value)
    assert "--execution-horizon" in msg
    assert "action_horizon (4)" in msg
    assert f"got {execution}" in msg


@pytest.mark.parametrize("raw", [0, -2])
def test_execution_horizon_below_one_is_refused(raw: int) -> None:
    with pytest.raises(ConfigError, match=rf"--execution-horizon: expected an integer >= 1, got {raw}"):
        make_config(ChunkedConfig, {"execution_horizon": str(raw)})


def test_execution_horizon_equal_to_bounds_is_accepted() -> None:
    assert chunked(1, 4).execution_horizon == 1
    assert chunked(4, 4).execution_horizon == 4


def test_policy_suggested_execution_horizon_is_used_when_not_configured() -> None:
    s = chunked(None, 4, suggested=3)
    assert s.execution_horizon == 3
    d = Driver(s, 1, 4)
    assert [d.step()[0] for _ in range(7)] == [0.0, 1.0, 2.0, 10.0, 11.0, 12.0, 20.0]


def test_configured_execution_horizon_overrides_the_suggestion() -> None:
    assert chunked(2, 4, suggested=3).execution_horizon == 2


def test_suggested_execution_horizon_is_validated_too() -> None:
    with pytest.raises(
        ConfigError,
        match=r"the policy.s recommended execution horizon: expected 1 <= execution_horizon <= action_horizon \(4\), got 6",
    ):
        chunked(None, 4, suggested=6)


def test_action_horizon_below_one_is_refused() -> None:
    with pytest.raises(ConfigError, match="action_horizon: expected an integer >= 1, got 0"):
        chunked(None, 0)


def test_pop_without_a_chunk_names_the_slots() -> None:
    s = chunked(None, 2, num_envs=3)
    s.push(np.zeros((1, 2, 1), np.float32), [1])
    with pytest.raises(PolicyError, match=r"env slots \[0, 2\] have no action left"):
        s.pop([0, 1, 2])


# -- passthrough -------------------------------------------------------------------------------------


def test_passthrough_queries_every_step_and_executes_the_first_action() -> None:
    s = PassThroughScheduler(NoConfig(), 1, 1, 3, suggested_execution=3)  # the suggestion does not apply
    assert s.execution_horizon == 1
    d = Driver(s, 1, 3)
    assert [d.step()[0] for _ in range(4)] == [0.0, 10.0, 20.0, 30.0]
    assert d.masks == [[True]] * 4


# -- temporal ensembling -------------------------------------------------------------------------------


def test_temporal_ensemble_hand_computed_horizon3_decay05() -> None:
    # Chunk q is issued at step q and predicts steps q, q+1, q+2 with values 100q + 10j:
    #   c0 = [0, 10, 20], c1 = [100, 110, 120], c2 = [200, 210, 220], c3 = [300, 310, 320].
    # ACT weights exp(-0.5 * i), i = 0 for the OLDEST prediction:
    #   w0 = 1, w1 = exp(-0.5) = 0.6065306597, w2 = exp(-1) = 0.3678794412
    # t0: c0[0]                                   = 0
    # t1: (1*10 + w1*100) / (1 + w1)              = 70.65306597 / 1.60653066 = 43.97866019
    # t2: (1*20 + w1*110 + w2*200) / (1 + w1 + w2) = 160.2942609 / 1.97441010 = 81.18589990
    # t3: (1*120 + w1*210 + w2*300) / (1+w1+w2)   = 357.7352726 / 1.97441010 = 181.1858999
    #     (c0 dropped out: it has no prediction for step 3; the ring slot of c0 now holds c3)
    s = TemporalEnsembleScheduler(EnsembleConfig(0.5), 1, 1, 3)
    d = Driver(s, 1, 3, q_step=100, j_step=10)
    actions = [d.step()[0] for _ in range(4)]
    assert actions == pytest.approx([0.0, 43.97866019, 81.18589990, 181.1858999], abs=1e-4)
    assert d.masks == [[True]] * 4


def test_temporal_ensemble_decay_zero_is_the_plain_mean() -> None:
    s = TemporalEnsembleScheduler(EnsembleConfig(0.0), 1, 1, 3)
    d = Driver(s, 1, 3, q_step=100, j_step=10)
    # t1 = (10 + 100) / 2; t2 = (20 + 110 + 200) / 3; t3 = (120 + 210 + 300) / 3
    assert [d.step()[0] for _ in range(4)] == pytest.approx([0.0, 55.0, 110.0, 210.0], abs=1e-4)


def test_temporal_ensemble_weights_the_oldest_prediction_most() -> None:
    # with a large decay the oldest prediction dominates: t1 -> 10 (c0's), not 100 (c1's)
    s = TemporalEnsembleScheduler(EnsembleConfig(50.0), 1, 1, 3)
    d = Driver(s, 1, 3, q_step=100, j_step=10)
    assert d.step()[0] == 0.0
    assert d.step()[0] == pytest.approx(10.0, abs=1e-3)


def test_temporal_ensemble_reset_of_one_slot_forgets_only_its_predictions() -> None:
    s = TemporalEnsembleScheduler(EnsembleConfig(0.0), 2, 1, 3)
    d = Driver(s, 2, 3)
    assert d.step() == [0.0, 100.0]  # query 0 for both: slot 0 [0, 1, 2], slot 1 [100, 101, 102]
    s.reset([1])
    # query 1: slot 0 [10, 11, 12], slot 1 [110, 111, 112]
    # slot 0 averages its two predictions for step 1: (1 + 10) / 2; slot 1 restarted: only 110
    assert d.step() == pytest.approx([5.5, 110.0])
    # step 2 of slot 0: (2 + 11 + 20) / 3 (query 2); slot 1 at its step 1: (111 + 120) / 2
    assert d.step() == pytest.approx([11.0, 115.5])


@pytest.mark.parametrize("decay", ["-0.1", "nan", "inf"])
def test_ensemble_decay_must_be_finite_and_non_negative(decay: str) -> None:
    with pytest.raises(ConfigError, match="--ensemble-decay: expected a finite number >= 0"):
        make_config(EnsembleConfig, {"ensemble_decay": decay})


def test_temporal_ensemble_pop_without_prediction_is_a_policy_error() -> None:
    s = TemporalEnsembleScheduler(EnsembleConfig(0.1), 1, 1, 2)
    with pytest.raises(PolicyError, match="env slot 0 has no prediction for step 0"):
        s.pop([0])


# -- synced batch ------------------------------------------------------------------------------------


def test_synced_batch_queries_only_when_every_active_env_is_empty() -> None:
    s = SyncedBatchScheduler(ChunkedConfig(None), 2, 1, 2, hold_action=np.array([-7.0]))
    d = Driver(s, 2, 2)
    assert d.step() == [0.0, 100.0]  # both empty -> one query for both
    s.reset([1])  # slot 1's episode restarted: its buffer is gone, slot 0 still has one action
    assert d.step() == [1.0, -7.0]  # no query: slot 1 holds while slot 0 finishes its chunk
    assert d.step() == [10.0, 110.0]  # now all empty: one query for both
    assert d.masks == [[True, True], [False, False], [True, True]]
    assert d.queries == 2


def test_synced_batch_ignores_inactive_slots() -> None:
    s = SyncedBatchScheduler(ChunkedConfig(None), 3, 1, 2)
    assert s.need_mask(np.array([True, False, True])).tolist() == [True, False, True]
    assert s.need_mask(np.zeros(3, bool)).tolist() == [False, False, False]


def test_synced_batch_default_hold_action_is_zeros() -> None:
    s = SyncedBatchScheduler(ChunkedConfig(None), 2, 2, 2)
    s.push(np.ones((1, 2, 2), np.float32), [0])
    assert s.pop([0, 1]).tolist() == [[1.0, 1.0], [0.0, 0.0]]


# -- partial resets and desynchronised envs -------------------------------------------------------------


def test_chunked_partial_reset_clears_only_that_slot() -> None:
    s = chunked(None, 4, num_envs=2)
    d = Driver(s, 2, 4)
    assert d.step() == [0.0, 100.0]  # query 0 for both
    s.reset([0])
    assert d.step() == [10.0, 101.0]  # query 1 for slot 0 only; slot 1 continues its chunk
    assert d.step() == [11.0, 102.0]
    assert d.step() == [12.0, 103.0]
    assert d.step() == [13.0, 120.0]  # slot 1 ran out first: query 2 for slot 1 only
    assert d.step() == [30.0, 121.0]  # then slot 0: query 3 for slot 0 only
    assert d.masks == [[True, True], [True, False], [False, False], [False, False], [False, True], [True, False]]


def test_desynchronised_envs_are_queried_only_when_empty() -> None:
    """Three slots whose chunks run out at different steps: the whole batch is never queried for one slot."""
    s = chunked(3, 3, num_envs=3)
    d = Driver(s, 3, 3)
    d.step()  # query 0: all three
    s.reset([1])
    d.step()  # slot 1 asks alone
    s.reset([2])
    d.step()  # slot 2 asks alone
    for _ in range(6):
        d.step()
    assert d.masks == [
        [True, True, True],
        [False, True, False],
        [False, False, True],
        [True, False, False],
        [False, True, False],
        [False, False, True],
        [True, False, False],
        [False, True, False],
        [False, False, True],
    ]
    assert sum(sum(m) for m in d.masks) == 3 + 8  # one row per empty slot, never a whole batch


def test_inactive_slots_are_never_asked_for() -> None:
    s = chunked(None, 2, num_envs=3)
    assert s.need_mask(np.array([False, True, False])).tolist() == [False, True, False]


# -- chunk shape --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: chunked(2, 4, num_envs=2),
        lambda: PassThroughScheduler(NoConfig(), 2, 1, 4),
        lambda: TemporalEnsembleScheduler(EnsembleConfig(), 2, 1, 4),
        lambda: SyncedBatchScheduler(ChunkedConfig(None), 2, 1, 4),
    ],
)
@pytest.mark.parametrize("shape", [(2, 3, 1), (2, 4, 2), (1, 4, 1)])
def test_wrong_chunk_shape_names_the_expected_shape(make, shape: tuple[int, int, int]) -> None:
    s = make()
    with pytest.raises(PolicyError) as err:
        s.push(np.zeros(shape, np.float32), [0, 1])
    assert "expected shape (2, 4, 1)" in str(err.value)
    assert f"got {shape}" in str(err.value)


def test_registered_scheduler_names(plugins) -> None:
    reg = plugins.schedulers
    assert reg.names() == ["chunked", "ensemble", "passthrough", "synced"]
    assert reg.get("chunked").obj is ChunkedScheduler
    assert reg.get("chunked").config is ChunkedConfig
    assert reg.get("ensemble").config is EnsembleConfig
    assert reg.get("synced").obj is SyncedBatchScheduler
    assert reg.get("passthrough").obj is PassThroughScheduler
