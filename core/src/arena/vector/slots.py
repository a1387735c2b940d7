"""The interface both slot runners implement: send commands to slots, gather their replies later."""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any

from arena.vector.buffers import SlotBuffers
from arena.vector.simulator import Reply

__all__ = ["SlotRunner", "Ticket"]


class Ticket:
    """Commands sent to some slots, whose replies :meth:`SlotRunner.gather` collects.

    ``deadline`` (``time.monotonic()``): when the slots still silent count as lost (hung).
    """

    __slots__ = ("slots", "commands", "pending", "replies", "deadline")

    def __init__(self, slots: Sequence[int], commands: Sequence[tuple[Any, ...]], deadline: float = math.inf) -> None:
        self.slots = list(slots)
        self.commands = list(commands)
        self.pending: dict[Any, int] = {}
        self.replies: list[Reply | None] = [None] * len(self.slots)
        self.deadline = deadline


class SlotRunner(abc.ABC):
    """Runs one :class:`~arena.vector.simulator.Simulator` per slot, writing into ``buffers``.

    A reply whose ``ok`` is False and whose steps are ``-1`` means the slot's
    simulator was LOST (its worker died or hung and was replaced); other
    failures are env errors of the episode.
    """

    buffers: SlotBuffers
    #: whether send() returns before the simulators finish (worker processes)
    concurrent: bool = False

    @abc.abstractmethod
    def send(self, slots: Sequence[int], commands: Sequence[tuple[Any, ...]]) -> Ticket:
        """Start ``commands[k]`` on slot ``slots[k]`` (at most one command per slot in flight)."""

    @abc.abstractmethod
    def gather(self, ticket: Ticket) -> list[Reply]:
        """The replies of ``ticket``, aligned with its slots."""

    def ready(self, ticket: Ticket) -> bool:
        """Whether :meth:`gather` would return without waiting."""
        return True

    def wait(self, tickets: Sequence[Ticket], timeout: float | None) -> None:
        """Block until one of ``tickets`` is ready or ``timeout`` passed (in process: always ready).

        A ticket whose deadline passed is ready: its silent slots answer LOST.
        """

    def run(self, slots: Sequence[int], commands: Sequence[tuple[Any, ...]]) -> list[Reply]:
        return self.gather(self.send(slots, commands))

    def pid(self, slot: int) -> int | None:
        """The process serving ``slot`` (None in process)."""
        return None

    @abc.abstractmethod
    def close(self) -> None:
        """Stop the simulators (and workers)."""
