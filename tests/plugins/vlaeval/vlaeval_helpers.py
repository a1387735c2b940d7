"""Start servers (vla-eval's own, or ``arena-vlaeval serve``) on free loopback ports; a Meta-World benchmark."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
from served_process import Served, free_port, start

HERE = Path(__file__).resolve().parent

__all__ = ["Served", "ThreadServer", "arena_serve", "free_port", "metaworld_benchmark", "vlaeval_expert"]


def vlaeval_expert(*args: str) -> Served:
    """The Meta-World expert behind vla-eval's own PredictModelServer."""
    port = free_port()
    return start([sys.executable, str(HERE / "vlaeval_expert_server.py"), str(port), *args], port)


def arena_serve(*args: str) -> Served:
    """``arena-vlaeval serve ARGS`` on a free port."""
    port = free_port()
    return start([sys.executable, "-m", "arena_vlaeval.cli", "serve", *args, "--port", str(port)], port)


def metaworld_benchmark(env_id: str):  # noqa: ANN201 - a vla_eval StepBenchmark
    """A vla-eval StepBenchmark over arena's Meta-World env: what a vla-eval user would write."""
    from vla_eval.benchmarks.base import StepBenchmark, StepResult

    from arena.env import EpisodeSpec
    from arena.plugins import load_plugins
    from arena.run import make_env

    class MetaWorldBenchmark(StepBenchmark):
        def __init__(self) -> None:
            super().__init__()
            self.env, _ = make_env(load_plugins(), env_id, None, 1)
            self.spec = self.env.spec
            self.groups = list(self.spec.state_groups)
            self.steps = 0

        def get_tasks(self) -> list[dict]:
            return [{"name": t.name} for t in self.spec.tasks]

        def _vec(self, res) -> np.ndarray:  # noqa: ANN001
            return np.concatenate([np.asarray(res.observation.state[g][0], np.float64) for g in self.groups])

        def reset(self, task: dict):  # noqa: ANN201
            self.steps = 0
            self.instruction = self.spec.task(task["name"]).instruction
            res = self.env.reset([0], [EpisodeSpec(task["name"], task["index"], task["seed"])], np.zeros(1, bool))
            return self._vec(res)

        def step(self, action: dict) -> StepResult:
            self.steps += 1
            act = np.asarray(action["actions"], np.float32).reshape(1, -1)
            res = self.env.step([0], act, np.zeros(1, bool))
            done = bool(res.success[0]) or self.steps >= self.spec.max_episode_steps
            return StepResult(self._vec(res), 0.0, done, {"success": bool(res.success[0])})

        def make_obs(self, raw_obs, task: dict) -> dict:  # noqa: ANN001
            return {"states": raw_obs, "task_description": self.instruction}

        def get_step_result(self, step_result: StepResult) -> dict:
            return {"success": step_result.info.get("success", False)}

        def get_action_spec(self) -> dict:
            return {}

        def get_observation_spec(self) -> dict:
            return {}

        def cleanup(self) -> None:
            self.env.close()

    return MetaWorldBenchmark()


class ThreadServer:
    """``arena-vlaeval``'s server (a :class:`arena_vlaeval.server.VlaevalServer`) on its own event loop thread."""

    def __init__(self, server: Any) -> None:
        import asyncio
        import threading

        self.server = server
        ready = threading.Event()
        self.loop = asyncio.new_event_loop()

        async def main() -> None:
            self.task = asyncio.current_task()
            try:
                await server.serve("127.0.0.1", 0, lambda port: ready.set())
            except asyncio.CancelledError:
                pass

        self.thread = threading.Thread(target=lambda: self.loop.run_until_complete(main()), daemon=True)
        self.thread.start()
        if not ready.wait(30):
            raise RuntimeError("the vla-eval server thread did not start")

    @property
    def port(self) -> int:
        return self.server.port

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(10)
        self.loop.close()
