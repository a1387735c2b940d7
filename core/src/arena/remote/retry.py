"""Retries with exponential backoff under an optional deadline, around one transport call.

Only connection problems are retried (``ConnectionError``, ``TimeoutError``, which every
family's transport errors derive from); an auth refusal, a server error or a codec error is
raised at once: retrying would not change the answer. Imports nothing from arena but
:mod:`arena.remote.errors`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import attrs

from arena.remote.errors import RemoteAuthError, RemoteConnectionError, RemoteTimeoutError

__all__ = ["RetryPolicy"]

log = logging.getLogger(__name__)
T = TypeVar("T")


@attrs.frozen
class RetryPolicy:
    """``retries`` extra attempts, pausing ``backoff_s`` (doubling up to ``max_backoff_s``)."""

    retries: int = 3
    backoff_s: float = 0.05
    max_backoff_s: float = 1.0
    #: cap on the whole call, attempts and pauses included (None: no cap)
    deadline_s: float | None = None

    def __attrs_post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")
        if self.deadline_s is not None and self.deadline_s <= 0:
            raise ValueError(f"deadline_s must be > 0 or None, got {self.deadline_s}")

    def call(
        self,
        attempt: Callable[[float | None], T],
        what: str,
        endpoint: str = "",
        retry_timeouts: bool = True,
        retry_on: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError),
        give_up: Callable[[BaseException, int, float], BaseException] | None = None,
    ) -> T:
        """``attempt(time_left)`` until it returns, the attempts run out, or the deadline passes.

        ``time_left`` is the seconds left before the deadline (None without one), so the
        attempt can cap its own timeout. The last connection problem is raised as a
        :class:`RemoteConnectionError` (:class:`RemoteTimeoutError` if it was a timeout)
        naming ``what``, the attempts and the time spent. ``retry_timeouts=False``: a
        timeout is raised at once (a request that may have reached a busy server).
        ``retry_on``: what counts as a connection problem (a family's transport error);
        ``give_up(error, attempts, elapsed_s)``: the error to raise at the end instead (e.g.
        with a diagnosis of why the server is unreachable).
        """
        start = time.monotonic()
        deadline = None if self.deadline_s is None else start + self.deadline_s
        pause = self.backoff_s
        attempts = 0
        while True:
            attempts += 1
            left = None if deadline is None else max(0.001, deadline - time.monotonic())
            try:
                return attempt(left)
            except RemoteAuthError:
                raise
            except retry_on as exc:
                if isinstance(exc, TimeoutError) and not retry_timeouts:
                    raise
                remaining = None if deadline is None else deadline - time.monotonic()
                if attempts > self.retries or (remaining is not None and remaining <= 0):
                    elapsed = time.monotonic() - start
                    if give_up is not None:
                        raise give_up(exc, attempts, elapsed) from exc
                    cls = RemoteTimeoutError if isinstance(exc, TimeoutError) else RemoteConnectionError
                    raise cls(
                        f"{what} failed after {attempts} attempt{'s' if attempts > 1 else ''} "
                        f"in {elapsed:.1f} s: {exc}",
                        endpoint=endpoint,
                        attempts=attempts,
                        elapsed_s=elapsed,
                    ) from exc
                wait = pause if remaining is None else min(pause, remaining)
                log.warning(
                    "%s: attempt %d/%d failed (%s); retrying in %.2fs", what, attempts, self.retries + 1, exc, wait
                )
                time.sleep(max(0.0, wait))
                pause = min(pause * 2, self.max_backoff_s)
