"""``SimVectorEnv``: the arena :class:`~arena.env.VectorEnv` over per-slot :class:`Simulator` objects.

A CPU simulator family (Meta-World, LIBERO) writes a :class:`Simulator` and
a spec; this class does the rest: slot buffers, the in-process or
worker-process runner, task checks, instructions, chunk steps in one round
trip, asynchronous steps, lost-worker reporting and render counting.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from arena.contract import EnvSpec, Observation
from arena.env import ChunkNativeEnv, EpisodeSpec, StepHandle, StepResult
from arena.vector.buffers import SlotBuffers, SlotLayout
from arena.vector.inprocess import InProcessSlots
from arena.vector.process import LOST, ProcessSlots
from arena.vector.simulator import Reply, Simulator, SimulatorFactory
from arena.vector.slots import SlotRunner, Ticket

log = logging.getLogger(__name__)

__all__ = ["SimVectorEnv", "MAX_SHARED_CHUNK", "IN_PROCESS_VAR", "default_processes"]

#: set to ``0`` to keep every simulator in the process that builds the env (a Ray shard does:
#: the shard IS the worker, and must not hide subprocesses of its own)
IN_PROCESS_VAR = "ARENA_SLOT_PROCESSES"

#: the longest action chunk that travels to a worker through shared memory (longer ones are pickled)
MAX_SHARED_CHUNK = 64


def default_processes(num_envs: int) -> bool:
    """Whether a CPU simulator family steps ``num_envs`` slots in worker processes by default."""
    return num_envs > 1 and os.environ.get(IN_PROCESS_VAR, "1") != "0"


def _default_slices(spec: EnvSpec) -> dict[str, slice]:
    out, pos = {}, 0
    for name, elements in spec.state_groups.items():
        out[name] = slice(pos, pos + len(elements))
        pos += len(elements)
    return out


def _ticket(handle: StepHandle) -> Ticket:
    state = handle.state
    return state[0] if isinstance(state, tuple) else state  # type: ignore[return-value]


class SimVectorEnv(ChunkNativeEnv):
    """``num_envs`` slots, each one :class:`Simulator`, stepped in process or in spawned workers.

    ``state_dim`` and ``group_slices`` say where each state group sits in a
    slot's flat float32 state row (default: the groups of ``spec``
    concatenated in order). ``processes``: one worker process per slot
    (default: when ``num_envs > 1``, see :func:`default_processes`); False keeps every simulator in this
    process (a Ray shard steps its simulators itself). ``prebuilt``
    simulators (in process only) serve the first slots, e.g. the one a
    family built to read the spec from.
    """

    def __init__(
        self,
        spec: EnvSpec,
        factory: SimulatorFactory,
        num_envs: int,
        *,
        state_dim: int | None = None,
        group_slices: Mapping[str, slice] | None = None,
        processes: bool | None = None,
        worker_timeout_s: float = 120.0,
        prebuilt: Sequence[Simulator] = (),
        label: str = "sim",
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.spec = spec
        self.num_envs = num_envs
        slices = dict(group_slices) if group_slices is not None else _default_slices(spec)
        dim = state_dim if state_dim is not None else max((s.stop for s in slices.values()), default=0)
        use_processes = default_processes(num_envs) if processes is None else processes
        # worker processes read chunks of up to MAX_SHARED_CHUNK actions from shared memory
        layout = SlotLayout(num_envs, dim, spec.cameras, spec.action_dim, MAX_SHARED_CHUNK if use_processes else 0)
        self.runner: SlotRunner
        if use_processes:
            for sim in prebuilt:
                sim.close()
            self.runner = ProcessSlots(factory, layout, timeout_s=worker_timeout_s, label=label)
        else:
            self.runner = InProcessSlots(factory, SlotBuffers(layout), prebuilt)
        self.async_steps = self.runner.concurrent  # type: ignore[misc]
        buffers = self.runner.buffers
        self._instructions = {t.name: t.instruction for t in spec.tasks}
        self._instruction = [""] * num_envs
        self._obs = Observation(
            images=buffers.images,
            state={name: buffers.state[:, sl] for name, sl in slices.items()},
            instruction=self._instruction,
            env_ids=np.arange(num_envs),
        )
        self._renders = 0
        self._closed = False

    # -- replies ---------------------------------------------------------------------------------
    def _result(self, ids: np.ndarray, replies: Sequence[Reply | None]) -> StepResult:
        n = len(ids)
        success = [False] * n
        steps = [0] * n
        errors: list[str | None] = [None] * n
        lost: list[int] = []
        for k, reply in enumerate(replies):
            if reply is None:  # filtered out before sending (unknown task)
                continue
            ok, executed, solved, message, renders = reply
            if renders:
                self._renders += renders
            if executed == LOST:
                lost.append(k)
                errors[k] = message
                continue
            steps[k] = executed
            success[k] = solved
            if not ok:
                errors[k] = message
        lost_mask = None
        if lost:
            lost_mask = np.zeros(n, bool)
            lost_mask[lost] = True
        return StepResult(ids, np.array(success, bool), errors, self._obs, np.array(steps, np.int64), lost_mask)

    # -- VectorEnv -------------------------------------------------------------------------------
    def reset(self, env_ids: Sequence[int], episodes: Sequence[EpisodeSpec], render: np.ndarray) -> StepResult:
        return self.reset_wait(self.reset_async(env_ids, episodes, render))

    def reset_async(self, env_ids: Sequence[int], episodes: Sequence[EpisodeSpec], render: np.ndarray) -> StepHandle:
        ids = np.asarray(env_ids, np.int64)
        known = [k for k, ep in enumerate(episodes) if ep.task in self._instructions]
        ticket = self.runner.send(
            [int(ids[k]) for k in known], [("reset", episodes[k], bool(render[k])) for k in known]
        )
        return StepHandle(ids, state=(ticket, known, list(episodes)))

    def reset_wait(self, handle: StepHandle) -> StepResult:
        ticket, known, episodes = handle.state  # type: ignore[misc]
        ids = handle.env_ids
        replies: list[Reply | None] = [None] * len(ids)
        for k, reply in zip(known, self.runner.gather(ticket)):
            replies[k] = reply
        res = self._result(ids, replies)
        tasks = ", ".join(self._instructions)
        for k, ep in enumerate(episodes):
            if replies[k] is None:
                res.error[k] = f"task {ep.task!r} is not part of {self.spec.name} (tasks: {tasks})"
            elif res.error[k] is None:
                self._instruction[int(ids[k])] = self._instructions[ep.task]
        res.steps = None
        return res

    def ready(self, handle: StepHandle) -> bool:
        return handle.run is not None or self.runner.ready(_ticket(handle))

    def wait(self, handles: Sequence[StepHandle], timeout: float | None) -> None:
        self.runner.wait([_ticket(h) for h in handles if h.run is None], timeout)

    def step_chunk(
        self, env_ids: Sequence[int], actions: np.ndarray, counts: np.ndarray, render: np.ndarray
    ) -> StepResult:
        if isinstance(self.runner, InProcessSlots):  # the fast path: no ticket, no handle
            ids = np.asarray(env_ids, np.int64)
            c, r = np.asarray(counts).tolist(), np.asarray(render).tolist()
            return self._result(ids, self.runner.step(ids.tolist(), actions, c, r))
        return self.step_wait(self.step_async(env_ids, actions, counts, render))

    def step_async(
        self, env_ids: Sequence[int], actions: np.ndarray, counts: np.ndarray, render: np.ndarray
    ) -> StepHandle:
        ids = np.asarray(env_ids, np.int64)
        if isinstance(self.runner, InProcessSlots):  # nothing runs concurrently here: step when waited on
            return StepHandle(ids, lambda: self.step_chunk(ids, actions, counts, render))
        acts = np.asarray(actions, np.float32)
        shared = self.runner.buffers.actions
        slots, counts_, renders = ids.tolist(), np.asarray(counts).tolist(), np.asarray(render).tolist()
        if self.runner.concurrent and acts.shape[1] <= shared.shape[1]:
            shared[ids, : acts.shape[1]] = acts  # the workers read their rows; the message carries counts only
            commands = [("chunk", None, c, bool(r)) for c, r in zip(counts_, renders)]
        else:
            commands = [("chunk", acts[k, : counts_[k]], counts_[k], bool(renders[k])) for k in range(len(slots))]
        return StepHandle(ids, state=self.runner.send(slots, commands))

    def step_wait(self, handle: StepHandle) -> StepResult:
        if handle.run is not None:
            return handle.run()
        return self._result(handle.env_ids, self.runner.gather(handle.state))  # type: ignore[arg-type]

    def observe(self, env_ids: Sequence[int], render: np.ndarray) -> Observation:
        rows = [int(env_ids[k]) for k in range(len(env_ids)) if render[k]]
        if rows:
            for reply in self.runner.run(rows, [("observe",)] * len(rows)):
                self._renders += reply[4]
        return self._obs

    def render_count(self) -> int:
        return self._renders

    def worker_pid(self, slot: int) -> int | None:
        """Process id of the worker serving ``slot`` (None in process); for tests and diagnostics."""
        return self.runner.pid(slot)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.runner.close()

    def __getstate__(self) -> Any:
        raise TypeError("a SimVectorEnv holds processes and shared memory; build it where it runs")
