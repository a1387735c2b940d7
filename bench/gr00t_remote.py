"""Remote evaluation through the GR00T protocol vs the same policy in process.

Both sides run ``arena.evaluate`` on the same Meta-World task, episodes and seeds, one env:

* expert: Meta-World's scripted expert in process vs ``arena eval --policy gr00t`` against
  ``arena-gr00t serve --policy expert`` (a separate process on 127.0.0.1). The expert answers
  chunks of one action (it is closed loop on state), so the served horizon and the execution
  horizon are 1: every step is a round trip. This is the ``ratio=`` line.
* chunk8: the ``zero`` policy with ``--action-horizon 8``, served and in process, executing
  all 8 actions per query (``--execution-horizon 8``): the cost of the remote path when
  chunking amortises the round trip. Episodes run to ``--max-steps``.

Throughput is env steps per second between the end of the first episode and the end of the
last (steady state: env construction, preflight and the first episode are left out on both
sides). The sides alternate ``--rounds`` times; the best round of each is compared (on a
shared machine other jobs only ever slow a round down), medians are printed too. ``ratio`` = remote throughput / in-process throughput (1.0 = no cost).

Usage: python bench/gr00t_remote.py [--task reach-v3] [--episodes 10] [--rounds 5]
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import arena


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(*args: str) -> tuple[subprocess.Popen, int, Path]:
    port = _free_port()
    script = Path(sys.executable).with_name("arena-gr00t")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "arena_gr00t.cli"]
    log = Path(tempfile.mkstemp(prefix="gr00t-bench-", suffix=".log")[1])
    with log.open("w") as fh:
        proc = subprocess.Popen([*cmd, "serve", *args, "--port", str(port)], stdout=fh, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while "listening on" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"server did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return proc, port, log


def _run(policy: str, env: str, episodes: int, **kw: Any) -> tuple[float, int, dict]:
    """(steady-state seconds, steps in them, outcomes): from the end of the first episode to the
    end of the last, so env construction and preflight (equal on both sides) do not dilute it."""
    outcomes: dict = {}
    ends: list[float] = []

    def ended(record: Any, done: int, total: int) -> None:
        ends.append(time.perf_counter())
        outcomes[record.episode_index] = (record.success, record.length)

    arena.evaluate(policy, env, episodes=episodes, write=False, on_episode=ended, **kw)
    steps = sum(length for i, (_, length) in outcomes.items() if i > 0)
    return ends[-1] - ends[0], steps, outcomes


def compare(
    label: str,
    env: str,
    episodes: int,
    rounds: int,
    serve_args: list[str],
    local_policy: str,
    local_config: dict[str, Any],
    **kw: Any,
) -> float:
    proc, port, log = _serve("--env", env, *serve_args)
    try:
        local_t, remote_t = [], []
        for _ in range(rounds):
            wall, steps, local_out = _run(local_policy, env, episodes, policy_config=local_config, **kw)
            local_t.append(steps / wall)
            wall, steps, remote_out = _run("gr00t", env, episodes, policy_config={"port": port}, **kw)
            remote_t.append(steps / wall)
            if remote_out != local_out:
                raise SystemExit(f"{label}: remote outcomes differ from in-process ones")
        local_best, remote_best = max(local_t), max(remote_t)
        successes = sum(s for s, _ in local_out.values())
        ratio = remote_best / local_best
        print(
            f"{label}: env={env} episodes={episodes} steps={steps} successes={successes} rounds={rounds} "
            f"in_process_steps_per_s={local_best:.0f} remote_steps_per_s={remote_best:.0f} "
            f"(medians {statistics.median(local_t):.0f} / {statistics.median(remote_t):.0f}) "
            f"ms_per_step_added={1e3 / remote_best - 1e3 / local_best:.3f} ratio_{label}={ratio:.3f}"
        )
        return ratio
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        os.unlink(log)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="reach-v3", help="Meta-World task (default: reach-v3)")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per side and round (default: 10)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per comparison (default: 5)")
    parser.add_argument("--chunk-max-steps", type=int, default=200, help="episode length of the chunk8 runs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    env = f"metaworld/{args.task}"
    expert = compare("expert", env, args.episodes, args.rounds, ["--policy", "expert"], "expert", {})
    compare(
        "chunk8",
        env,
        args.episodes,
        args.rounds,
        ["--policy", "zero", "--action-horizon", "8"],
        "zero",
        {"action_horizon": 8},
        max_steps=args.chunk_max_steps,
        scheduler_config={"execution_horizon": 8},
    )
    print(f"ratio={expert:.3f}")


if __name__ == "__main__":
    main()
