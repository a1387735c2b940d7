"""Slots stepped in this process, one after another (one slot, tests, and inside a Ray shard)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from arena.vector.buffers import SlotBuffers
from arena.vector.simulator import Reply, Simulator, SimulatorFactory, execute
from arena.vector.slots import SlotRunner, Ticket

log = logging.getLogger(__name__)

__all__ = ["InProcessSlots"]


class InProcessSlots(SlotRunner):
    """``num_slots`` simulators built here by ``factory``; commands run when gathered."""

    def __init__(self, factory: SimulatorFactory, buffers: SlotBuffers, prebuilt: Sequence[Simulator] = ()) -> None:
        self.buffers = buffers
        n = buffers.layout.num_slots
        self.sims: list[Simulator] = list(prebuilt)[:n]
        self.sims += [factory() for _ in range(n - len(self.sims))]
        self._rows = [buffers.row(i) for i in range(n)]

    def send(self, slots: Sequence[int], commands: Sequence[tuple[Any, ...]]) -> Ticket:
        return Ticket(slots, commands)

    def gather(self, ticket: Ticket) -> list[Reply]:
        out: list[Reply] = []
        for slot, command in zip(ticket.slots, ticket.commands):
            state, images = self._rows[slot]
            out.append(execute(self.sims[slot], command, state, images))
        return out

    def step(self, slots: Sequence[int], actions: Any, counts: Sequence[int], render: Sequence[bool]) -> list[Reply]:
        """Chunk commands run at once (the in-process fast path of SimVectorEnv.step_chunk)."""
        rows, sims = self._rows, self.sims
        out = []
        for k, slot in enumerate(slots):
            state, images = rows[slot]
            out.append(execute(sims[slot], ("chunk", actions[k], counts[k], render[k]), state, images))
        return out

    def close(self) -> None:
        for sim in self.sims:
            try:
                sim.close()
            except Exception:  # noqa: BLE001 - closing one must not keep the others open
                log.debug("closing a simulator failed", exc_info=True)
        self.sims = []
