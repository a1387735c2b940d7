"""vla-eval family: per-step client overhead, and serve-side batching.

1. Client overhead: the same Meta-World episodes (reach-v3, the scripted expert) evaluated in
   process and through ``--policy vlaeval`` against ``arena-vlaeval serve --policy expert`` on
   loopback: state only (the server declares no image, so none is rendered or sent), and with
   one 224x224 image sent as png and as raw (``--image-keys env``). Printed: ms per env step
   of each and ``ratio_*`` = remote / in process.
2. Serve-side batching: 8 sessions (one per thread, each looping observation -> action)
   against ``arena-vlaeval``'s server hosting a policy that takes a fixed 20 ms per infer call
   whatever the batch; ``ratio=X`` = actions/s batched (one infer for the observations that
   arrive within the window) over unbatched (``--infer-batch 1``). Target >= 4.

Usage: python bench/vlaeval_client.py [--episodes 6] [--seconds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ENV = "metaworld/reach-v3"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(*args: str) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "arena_vlaeval.cli",
            "serve",
            "--policy",
            "expert",
            "--env",
            ENV,
            *args,
            "--port",
            str(port),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, port
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("arena-vlaeval serve did not start") from None
            time.sleep(0.1)


def _per_step_ms(policy: str, episodes: int, **config: Any) -> tuple[float, float]:
    """(ms per env step, ms of policy query per step) over the episodes' own timings (no start-up)."""
    import arena

    records: list[Any] = []
    arena.evaluate(
        policy,
        ENV,
        episodes=episodes,
        num_envs=1,
        write=False,
        policy_config=config or None,
        on_episode=lambda r, done, total: records.append(r),
    )
    steps = sum(r.length for r in records)
    wall = sum(r.timings["wall_s"] for r in records)
    infer = sum(r.timings["infer_s"] for r in records)
    return wall * 1000 / steps, infer * 1000 / steps


def client_overhead(episodes: int) -> None:
    from arena_vlaeval.mapping import packaged_mapping

    local = _per_step_ms("expert", episodes)
    proc, port = _serve()
    try:
        state = _per_step_ms("vlaeval", episodes, host=f"127.0.0.1:{port}")
    finally:
        proc.terminate()
    proc, port = _serve("--image-keys", "env")
    with tempfile.TemporaryDirectory() as tmp:
        mapping = Path(tmp) / "m.toml"
        mapping.write_text(packaged_mapping("metaworld").read_text())
        try:
            png = _per_step_ms("vlaeval", episodes, host=f"127.0.0.1:{port}", image_format="png", mapping=str(mapping))
            raw = _per_step_ms("vlaeval", episodes, host=f"127.0.0.1:{port}", image_format="raw", mapping=str(mapping))
        finally:
            proc.terminate()
    for name, (wall, infer) in (("in_process", local), ("state", state), ("png_224", png), ("raw_224", raw)):
        print(f"{name}: ms_per_step={wall:.3f} query_ms_per_step={infer:.3f}", flush=True)
    print(
        f"ratio_state={state[0] / local[0]:.2f} ratio_png={png[0] / local[0]:.2f} ratio_raw={raw[0] / local[0]:.2f} "
        f"(per env step, remote / in process; the image rows also render a 224x224 camera every step)",
        flush=True,
    )


def _sleepy_policy() -> Any:
    from arena.builtins.policies import ZeroPolicy

    class FixedLatency(ZeroPolicy):
        """20 ms per infer call, whatever the batch (a GPU forward pass)."""

        def infer(self, observation: Any, env_mask: Any) -> Any:
            time.sleep(0.02)
            return super().infer(observation, env_mask)

    return FixedLatency


def _throughput(infer_batch: int | None, sessions: int, seconds: float) -> tuple[float, float]:
    from arena_vlaeval.mapping import VlaevalMapping
    from arena_vlaeval.server import VlaevalServer
    from arena_vlaeval.wire.session import Session

    from arena.remote.serving import ServedPolicy

    served = ServedPolicy(_sleepy_policy(), "debug/reach", max_batch=sessions)
    mapping = VlaevalMapping.from_toml(
        'prompt_key = "task_description"\n[state.states]\ngroups = ["position", "goal"]\n', "bench"
    )
    server = VlaevalServer(served, mapping, max_wait_s=0.002, infer_batch=infer_batch)
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    holder: dict[str, Any] = {}

    async def main() -> None:
        holder["task"] = asyncio.current_task()
        try:
            await server.serve("127.0.0.1", 0, lambda p: ready.set())
        except asyncio.CancelledError:
            pass

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    ready.wait(30)
    counts = [0] * sessions
    stop = time.monotonic() + seconds
    obs = {"states": np.zeros(4, np.float32), "task_description": served.spec.tasks[0].instruction}

    def client(i: int) -> None:
        s = Session("127.0.0.1", server.port, timeout_s=30)
        s.episode_start({"name": "bench"})
        while time.monotonic() < stop:
            s.act(obs)
            counts[i] += 1
        s.close()

    workers = [threading.Thread(target=client, args=(i,)) for i in range(sessions)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - t0
    loop.call_soon_threadsafe(holder["task"].cancel)
    thread.join(10)
    served.close()
    return sum(counts) / elapsed, float(np.mean(server.batches)) if server.batches else 0.0


def batching(seconds: float) -> None:
    unbatched, size1 = _throughput(1, 8, seconds)
    batched, size = _throughput(None, 8, seconds)
    print(
        f"sessions=8 latency_ms=20 actions_per_s_unbatched={unbatched:.1f} (mean batch {size1:.1f}) "
        f"actions_per_s_batched={batched:.1f} (mean batch {size:.1f}) ratio={batched / unbatched:.2f}",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=4.0)
    args = ap.parse_args()
    client_overhead(args.episodes)
    batching(args.seconds)


if __name__ == "__main__":
    os.environ.setdefault("MUJOCO_GL", "egl")
    main()
