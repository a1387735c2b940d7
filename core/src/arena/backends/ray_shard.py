"""The body of a Ray env shard: K env slots built by the env family inside the actor.

The shard is the worker: its simulators are stepped in the actor's own
process (``ARENA_SLOT_PROCESSES=0``, so a CPU family does not start worker
processes of its own inside it). One call runs a whole action chunk on the
shard's slots and returns a :class:`ShardReply` holding only the stepped
rows' state, and images only for the rows whose frames will be read: a
Ray call costs about 1 ms and a 300 KB reply several, so never one call
per slot per step.

This module imports nothing from Ray: :mod:`arena.backends.ray_env` wraps
:class:`EnvShard` with ``ray.remote`` in the coordinator.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from arena.env import EpisodeSpec, StepResult

__all__ = ["EnvShard", "ShardReply"]


@attrs.define
class ShardReply:
    """What one shard call returns, aligned with the local slot ids it was given.

    ``images[camera]`` holds the rows listed in ``image_rows`` (positions in
    the call), rendered after the call; ``instructions`` is set by resets.
    ``renders``: the shard's render count so far.
    """

    success: np.ndarray
    error: list[str | None]
    steps: np.ndarray | None
    lost: np.ndarray | None
    state: dict[str, np.ndarray]
    image_rows: np.ndarray
    images: dict[str, np.ndarray]
    instructions: list[str] | None
    renders: int


class EnvShard:
    """K slots of an env id, built with the installed plugins of the node the actor runs on.

    Construction does nothing, so that a ``ping`` answers as soon as Ray has
    placed the actor (placement and env building have separate timeouts);
    :meth:`build` then builds the env.
    """

    def __init__(self) -> None:
        self.env: Any = None

    def ping(self) -> int:
        return os.getpid()

    def build(self, env_id: str, env_config: Any, num_envs: int, cpus: float = 1.0) -> dict[str, Any]:
        """Build ``num_envs`` slots of ``env_id`` in this process; returns :meth:`describe`."""
        from arena.vector import IN_PROCESS_VAR

        os.environ[IN_PROCESS_VAR] = "0"
        # software GL (llvmpipe) would start a render thread per core of the node in every shard
        os.environ.setdefault("LP_NUM_THREADS", str(max(1, int(cpus))))
        from arena.plugins import load_plugins
        from arena.run import make_env

        self.env, _ = make_env(load_plugins(), env_id, env_config, num_envs)
        return self.describe()

    def describe(self) -> dict[str, Any]:
        """The spec and where this shard runs (host, pid, Ray node id)."""
        node = ""
        ray = sys.modules.get("ray")  # in an actor; never initialise Ray from here
        if ray is not None and ray.is_initialized():
            try:
                node = ray.get_runtime_context().get_node_id()
            except Exception:  # noqa: BLE001 - only for the record
                pass
        return {"spec": self.env.spec, "host": socket.gethostname(), "pid": os.getpid(), "node_id": node}

    def reset(self, ids: Sequence[int], episodes: Sequence[EpisodeSpec], render: np.ndarray) -> ShardReply:
        res = self.env.reset(ids, episodes, render)
        return self._reply(res, ids, render, instructions=True)

    def step(self, ids: Sequence[int], actions: np.ndarray, counts: np.ndarray, render: np.ndarray) -> ShardReply:
        res = self.env.step_chunk(ids, actions, counts, render)
        return self._reply(res, ids, render)

    def observe(self, ids: Sequence[int], render: np.ndarray) -> ShardReply:
        obs = self.env.observe(ids, render)
        n = len(ids)
        res = StepResult(np.asarray(ids, np.int64), np.zeros(n, bool), [None] * n, obs)
        return self._reply(res, ids, render)

    def _reply(self, res: StepResult, ids: Sequence[int], render: np.ndarray, instructions: bool = False) -> ShardReply:
        idx = np.asarray(ids, np.int64)
        obs = res.observation
        ended = np.asarray(res.success, bool) | np.array([e is not None for e in res.error], bool)
        rows = np.flatnonzero(np.asarray(render, bool) & ~ended)
        return ShardReply(
            success=np.asarray(res.success, bool),
            error=list(res.error),
            steps=None if res.steps is None else np.asarray(res.steps, np.int64),
            lost=None if res.lost is None else np.asarray(res.lost, bool),
            state={k: np.asarray(v)[idx] for k, v in obs.state.items()},
            image_rows=rows,
            images={k: np.asarray(v)[idx[rows]] for k, v in obs.images.items()} if len(rows) else {},
            instructions=[obs.instruction[i] for i in idx.tolist()] if instructions else None,
            renders=self.env.render_count(),
        )

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
