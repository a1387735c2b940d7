"""The body of a Ray env shard: K env slots built by the env family inside the actor.

The shard is the worker: its simulators are stepped in the actor's own
process (``ARENA_SLOT_PROCESSES=0``, so a CPU family does not start worker
processes of its own inside it). One call runs a whole action chunk on the
shard's slots and returns only the stepped rows' state, and images only
for the rows whose frames will be read (:mod:`arena.backends.ray_codec`):
a Ray call costs about 1 ms and a 300 KB reply several, so never one
call per slot per step.

This module imports nothing from Ray: :mod:`arena.backends.ray_env` wraps
:class:`EnvShard` with ``ray.remote`` in the coordinator.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

import numpy as np

from arena.backends.ray_codec import pack_reply, unpack_call
from arena.env import StepResult

__all__ = ["EnvShard"]


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

    def call(self, message: bytes) -> bytes:
        """Run one packed call (:mod:`arena.backends.ray_codec`) on this shard's slots."""
        c = unpack_call(message)
        ids, render = c["ids"], c["render"]
        if c["kind"] == "reset":
            res = self.env.reset(ids, c["episodes"], render)
        elif c["kind"] == "step":
            res = self.env.step_chunk(ids, c["actions"], c["counts"], render)
        elif c["kind"] == "observe":
            obs = self.env.observe(ids, render)
            res = StepResult(np.asarray(ids, np.int64), np.zeros(len(ids), bool), [None] * len(ids), obs)
        else:
            raise ValueError(f"unknown shard call {c['kind']!r}")
        return pack_reply(res, ids, render, c["kind"] == "reset", self.env.render_count())

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
