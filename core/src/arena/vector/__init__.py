"""Running CPU simulators for arena: per-slot :class:`Simulator` objects behind one VectorEnv.

* :mod:`arena.vector.simulator`: the interface a family implements, and the shared command executor;
* :mod:`arena.vector.buffers`: observation rows, in process or in shared memory;
* :mod:`arena.vector.inprocess` and :mod:`arena.vector.process`: the two slot runners;
* :mod:`arena.vector.sim_env`: :class:`SimVectorEnv`, the VectorEnv over them.
"""

from __future__ import annotations

from arena.vector.buffers import SlotBuffers, SlotLayout
from arena.vector.inprocess import InProcessSlots
from arena.vector.process import ProcessSlots
from arena.vector.sim_env import IN_PROCESS_VAR, SimVectorEnv, default_processes
from arena.vector.simulator import Reply, Simulator, SimulatorFactory, close_quietly, execute
from arena.vector.slots import SlotRunner

__all__ = [
    "Simulator",
    "SimulatorFactory",
    "Reply",
    "execute",
    "close_quietly",
    "SlotLayout",
    "SlotBuffers",
    "SlotRunner",
    "InProcessSlots",
    "ProcessSlots",
    "SimVectorEnv",
    "default_processes",
    "IN_PROCESS_VAR",
]
