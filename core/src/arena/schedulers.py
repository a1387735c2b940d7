"""Action schedulers: which env slots need a new chunk, and which action each slot executes.

The policy is queried ONLY for the slots whose chunk ran out (``need_mask``),
never for the whole batch because one env did; per-slot reset clears only
that slot's buffer. Schedulers are registered by name through
``arena_register_schedulers`` (see :mod:`arena.builtins.schedulers`).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import ClassVar

import attrs
import numpy as np

from arena.errors import ConfigError, PolicyError
from arena.policy import NoConfig
from arena.validators import at_least

__all__ = [
    "ActionScheduler",
    "PassThroughScheduler",
    "ChunkedScheduler",
    "ChunkedConfig",
    "TemporalEnsembleScheduler",
    "EnsembleConfig",
    "SyncedBatchScheduler",
]


def _ids(env_ids: Sequence[int] | np.ndarray) -> np.ndarray:
    return np.asarray(env_ids, dtype=np.int64)


class ActionScheduler(abc.ABC):
    """Buffers action chunks per env slot and hands out one action per step."""

    Config: ClassVar[type] = NoConfig
    #: True when one slot's query depends on the others (synced batches): such a scheduler
    #: cannot run with pipelined stages, which query slot groups independently
    couples_slots: ClassVar[bool] = False

    def __init__(
        self,
        config: object,
        num_envs: int,
        action_dim: int,
        action_horizon: int,
        hold_action: np.ndarray | None = None,
        suggested_execution: int | None = None,
    ) -> None:
        if action_horizon < 1:
            raise ConfigError(f"action_horizon: expected an integer >= 1, got {action_horizon}")
        self.config = config
        self.num_envs = num_envs
        self.action_dim = action_dim
        self.action_horizon = action_horizon
        self.hold_action = (
            np.zeros(action_dim, np.float32) if hold_action is None else np.asarray(hold_action, np.float32)
        )
        self.suggested_execution = suggested_execution

    @abc.abstractmethod
    def need_mask(self, active: np.ndarray) -> np.ndarray:
        """Bool (N,): active slots that must get a chunk before the next :meth:`pop`."""

    @abc.abstractmethod
    def push(self, actions: np.ndarray, env_ids: Sequence[int]) -> None:
        """Store chunks ``actions`` (M, horizon, A) for slots ``env_ids``."""

    @abc.abstractmethod
    def pop(self, env_ids: Sequence[int]) -> np.ndarray:
        """The next action (len(env_ids), A) of each slot, advancing its buffer."""

    @abc.abstractmethod
    def reset(self, env_ids: Sequence[int]) -> None:
        """Forget the buffers of ``env_ids`` only (their episodes restarted)."""

    def pop_chunk(self, env_ids: Sequence[int], limit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The actions each slot executes before it needs the policy again, at most ``limit[k]``.

        Returns (actions (len(env_ids), m, A), counts (len(env_ids),)) for one
        :meth:`arena.env.VectorEnv.step_chunk` call, advancing the buffers by
        ``counts``. The default hands out one action per slot (:meth:`pop`),
        right for schedulers that decide every step.
        """
        actions = self.pop(env_ids)
        return actions[:, None, :], np.ones(len(actions), np.int64)

    def _check_chunk(self, actions: np.ndarray, env_ids: np.ndarray) -> None:
        expected = (len(env_ids), self.action_horizon, self.action_dim)
        if actions.shape != expected:
            raise PolicyError(
                f"action chunk: expected shape {expected} (envs, action_horizon, action_dim), got {actions.shape}"
            )


@attrs.define
class ChunkedConfig:
    execution_horizon: int | None = attrs.field(
        default=None,
        validator=at_least(1, kind="an integer"),
        metadata={
            "help": "actions of each chunk executed before querying again, 1..action_horizon "
            "(default: what the policy recommends, else the whole chunk)"
        },
    )


class ChunkedScheduler(ActionScheduler):
    """Execute the first ``execution_horizon`` actions of each chunk, then query again."""

    Config = ChunkedConfig

    def __init__(
        self, config: ChunkedConfig, num_envs: int, action_dim: int, action_horizon: int, **kw: object
    ) -> None:
        super().__init__(config, num_envs, action_dim, action_horizon, **kw)  # type: ignore[arg-type]
        k = config.execution_horizon or self.suggested_execution or action_horizon
        if not 1 <= k <= action_horizon:
            source = "--execution-horizon" if config.execution_horizon else "the policy's recommended execution horizon"
            raise ConfigError(
                f"{source}: expected 1 <= execution_horizon <= action_horizon ({action_horizon}), got {k}"
            )
        self.execution_horizon = k
        self._buf = np.zeros((num_envs, k, action_dim), np.float32)
        self._pos = np.zeros(num_envs, np.int64)
        self._left = np.zeros(num_envs, np.int64)

    def need_mask(self, active: np.ndarray) -> np.ndarray:
        return active & (self._left == 0)

    def push(self, actions: np.ndarray, env_ids: Sequence[int]) -> None:
        ids = _ids(env_ids)
        self._check_chunk(actions, ids)
        k = self.execution_horizon
        self._buf[ids] = actions[:, :k]
        self._pos[ids] = 0
        self._left[ids] = k

    def _pop_one(self, ids: np.ndarray) -> np.ndarray:
        if len(ids) == 1:  # one slot (the common --num-envs 1): scalar updates, no fancy indexing
            i = int(ids[0])
            if not self._left[i]:
                raise PolicyError(f"scheduler: env slots [{i}] have no action left (no chunk was pushed)")
            self._pos[i] += 1
            self._left[i] -= 1
            return np.ones(1, np.int64)
        left = self._left[ids]
        if not left.all():
            raise PolicyError(
                f"scheduler: env slots {ids[left == 0].tolist()} have no action left (no chunk was pushed)"
            )
        self._pos[ids] += 1
        self._left[ids] = left - 1
        return np.ones(len(ids), np.int64)

    def pop(self, env_ids: Sequence[int]) -> np.ndarray:
        ids = _ids(env_ids)
        out = self._buf[ids, self._pos[ids]]
        self._pop_one(ids)
        return out

    def pop_chunk(self, env_ids: Sequence[int], limit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = _ids(env_ids)
        if self.execution_horizon == 1:  # the common one-action-per-query case: nothing to offset
            return self._buf[ids], self._pop_one(ids)
        left = self._left[ids]
        if (left == 0).any():
            raise PolicyError(
                f"scheduler: env slots {ids[left == 0].tolist()} have no action left (no chunk was pushed)"
            )
        counts = np.minimum(left, limit)
        pos = self._pos[ids]
        if (pos == 0).all():
            actions = self._buf[ids]
        else:  # rows at different offsets (a cut by the step limit or a recording): shift each to 0
            m = self.execution_horizon
            idx = np.minimum(pos[:, None] + np.arange(m)[None, :], m - 1)
            actions = self._buf[ids[:, None], idx]
        self._pos[ids] = pos + counts
        self._left[ids] = left - counts
        return actions, counts

    def reset(self, env_ids: Sequence[int]) -> None:
        ids = _ids(env_ids)
        self._left[ids] = 0
        self._pos[ids] = 0


class PassThroughScheduler(ChunkedScheduler):
    """Query every step and execute the first action of each chunk."""

    Config = NoConfig

    def __init__(self, config: object, num_envs: int, action_dim: int, action_horizon: int, **kw: object) -> None:
        kw.pop("suggested_execution", None)
        super().__init__(ChunkedConfig(execution_horizon=1), num_envs, action_dim, action_horizon, **kw)


@attrs.define
class EnsembleConfig:
    ensemble_decay: float = attrs.field(
        default=0.01,
        metadata={"help": "ACT temporal-ensembling weight exp(-decay * i), i = 0 for the oldest prediction"},
    )

    @ensemble_decay.validator
    def _check(self, attribute: attrs.Attribute, value: float) -> None:
        if not np.isfinite(value) or value < 0:
            raise ConfigError(f"--ensemble-decay: expected a finite number >= 0, got {value}")


class TemporalEnsembleScheduler(ActionScheduler):
    """ACT-style temporal ensembling: query every step, average all predictions for now.

    The chunk issued at step s predicts steps s..s+H-1. The action at step t is
    the weighted mean of every stored prediction for t, weights
    ``exp(-decay * i)`` with i = 0 for the oldest (ACT's convention).
    """

    Config = EnsembleConfig

    def __init__(
        self, config: EnsembleConfig, num_envs: int, action_dim: int, action_horizon: int, **kw: object
    ) -> None:
        super().__init__(config, num_envs, action_dim, action_horizon, **kw)  # type: ignore[arg-type]
        h = action_horizon
        self._chunks = np.zeros((num_envs, h, h, action_dim), np.float32)  # ring over issue step
        self._issued = np.full((num_envs, h), -1, np.int64)
        self._t = np.zeros(num_envs, np.int64)
        self._last = np.full(num_envs, -1, np.int64)

    def need_mask(self, active: np.ndarray) -> np.ndarray:
        return active & (self._last != self._t)

    def push(self, actions: np.ndarray, env_ids: Sequence[int]) -> None:
        ids = _ids(env_ids)
        self._check_chunk(actions, ids)
        slots = self._t[ids] % self.action_horizon
        self._chunks[ids, slots] = actions
        self._issued[ids, slots] = self._t[ids]
        self._last[ids] = self._t[ids]

    def pop(self, env_ids: Sequence[int]) -> np.ndarray:
        ids = _ids(env_ids)
        out = np.empty((len(ids), self.action_dim), np.float32)
        h = self.action_horizon
        decay = self.config.ensemble_decay  # type: ignore[attr-defined]
        for row, i in enumerate(ids):
            t = self._t[i]
            issued = self._issued[i]
            valid = np.flatnonzero((issued >= 0) & (t - issued < h))
            if len(valid) == 0:
                raise PolicyError(f"scheduler: env slot {i} has no prediction for step {t}")
            order = valid[np.argsort(issued[valid])]  # oldest first
            preds = self._chunks[i, order, t - issued[order]]
            w = np.exp(-decay * np.arange(len(order)))
            out[row] = (w[:, None] * preds).sum(0) / w.sum()
            self._t[i] = t + 1
        return out

    def reset(self, env_ids: Sequence[int]) -> None:
        ids = _ids(env_ids)
        self._issued[ids] = -1
        self._t[ids] = 0
        self._last[ids] = -1


class SyncedBatchScheduler(ChunkedScheduler):
    """Query only when EVERY active slot has run out; slots waiting meanwhile execute the hold action.

    Suits servers that want full batches; a slot whose episode restarts waits
    (holding) until the others finish their chunks. It couples all slots, so
    it steps one action at a time and runs with one pipeline stage only.
    """

    couples_slots = True

    def need_mask(self, active: np.ndarray) -> np.ndarray:
        if active.any() and (self._left[active] == 0).all():
            return active.copy()
        return np.zeros_like(active)

    def pop(self, env_ids: Sequence[int]) -> np.ndarray:
        ids = _ids(env_ids)
        out = np.empty((len(ids), self.action_dim), np.float32)
        has = self._left[ids] > 0
        out[~has] = self.hold_action
        live = ids[has]
        out[has] = self._buf[live, self._pos[live]]
        self._pos[live] += 1
        self._left[live] -= 1
        return out

    def pop_chunk(self, env_ids: Sequence[int], limit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return ActionScheduler.pop_chunk(self, env_ids, limit)
