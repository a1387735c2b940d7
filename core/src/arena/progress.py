"""Progress bar for `arena eval`: episodes done, success so far, env steps per second."""

from __future__ import annotations

import sys
import time

from arena.results import EpisodeRecord

__all__ = ["Progress"]


class Progress:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._bar = None
        self._successes = 0
        self._episodes = 0
        self._steps = 0
        self._t0 = time.perf_counter()

    def update(self, record: EpisodeRecord, done: int, total: int) -> None:
        self._episodes += 1
        self._successes += int(record.success)
        self._steps += record.length
        if not self.enabled:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=done - 1, unit="ep", desc="eval", dynamic_ncols=True)
        rate = self._successes / self._episodes
        sps = self._steps / max(time.perf_counter() - self._t0, 1e-9)
        self._bar.set_postfix_str(f"success={rate:.2f} steps/s={sps:.0f}", refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
