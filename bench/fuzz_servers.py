"""The long fuzz campaign against both reference servers (tests/fuzz runs a short one in CI).

Starts `arena-gr00t serve` and `arena-openpi serve` (policy `zero`, env `debug/reach`, a 1 MiB
message limit) on 127.0.0.1 and sends each one ``--messages`` hostile messages (random bytes,
truncated and mutated valid requests, wrong types, absurd dtypes and shapes, container floods,
oversized frames, raw TCP garbage), checking after every tenth that a valid request is answered
correctly. Prints per server: messages sent, crashes, hangs, lost replies, error replies,
dropped connections and RSS before/after (targets: 0 crashes, 0 hangs, 0 lost, RSS growth
under 50 MB per 10,000 messages). Only loopback addresses; every loop is bounded.

Usage: python bench/fuzz_servers.py [--messages 10000] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fuzz"))
os.environ.setdefault("MUJOCO_GL", "egl")

from fuzz_campaign import gr00t_campaign, openpi_campaign  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=10_000, help="hostile messages per server (default 10000)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    for campaign in (gr00t_campaign, openpi_campaign):
        t0 = time.monotonic()
        report = campaign(args.messages, args.seed)
        print(f"{report.line()} seconds={time.monotonic() - t0:.0f}", flush=True)


if __name__ == "__main__":
    main()
