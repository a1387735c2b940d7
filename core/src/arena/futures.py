"""Futures helpers for policies whose query is several requests in flight (one per observation)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["gather", "completed"]

T = TypeVar("T")


class _Completed(Future):
    """A future born finished: skips the lock and condition a pending future needs (cheap per step).

    All instances share one condition (reentrant), which is only ever held for an instant:
    nothing can wait on a finished future.
    """

    _shared = threading.Condition()

    def __init__(self, value: Any) -> None:  # noqa: D107 - Future's own state, set finished
        self._condition = self._shared
        self._state = "FINISHED"
        self._result = value
        self._exception = None
        self._waiters = []
        self._done_callbacks = []


def completed(value: T) -> Future[T]:
    """A future that already holds ``value``."""
    return _Completed(value)


def gather(futures: Sequence[Future], combine: Callable[[list[Any]], T]) -> Future[T]:
    """One future for all of ``futures``: ``combine(results in order)`` once every one finished.

    It waits for all of them even when one fails (no request is left
    running behind a reported failure), then raises the first failure in
    input order, or whatever ``combine`` raises. ``combine`` runs in the
    thread that completed the last future.
    """
    out: Future[T] = Future()
    if not futures:
        try:
            out.set_result(combine([]))
        except Exception as exc:  # noqa: BLE001 - delivered through the future
            out.set_exception(exc)
        return out
    left = [len(futures)]
    lock = threading.Lock()

    def done(_: Future) -> None:
        with lock:
            left[0] -= 1
            if left[0]:
                return
        for f in futures:
            if f.cancelled():
                out.set_exception(RuntimeError("a request of this query was cancelled"))
                return
            exc = f.exception()
            if exc is not None:
                out.set_exception(exc)
                return
        try:
            out.set_result(combine([f.result() for f in futures]))
        except Exception as exc:  # noqa: BLE001 - delivered through the future
            out.set_exception(exc)

    for f in futures:
        f.add_done_callback(done)
    return out
