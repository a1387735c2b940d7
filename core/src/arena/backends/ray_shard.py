"""The body of a Ray env shard: K env slots built by the env family inside the actor.

The shard is the worker: its simulators are stepped in the actor's own
process (``ARENA_SLOT_PROCESSES=0``, so a CPU family does not start worker
processes of its own inside it). One call runs a whole action chunk on the
shard's slots and returns only the stepped rows' state, and images only
for the rows whose frames will be read (:mod:`arena.backends.ray_codec`).

Ray places, starts, watches and kills the shard; the calls themselves go
over a ZeroMQ link the shard opens on its node's address (see
:mod:`arena.backends.ray_link`): a Ray actor call costs about 0.6-1 ms of
latency and 0.3 ms of CPU on each side, a chunk of a cheap simulator
costs a few ms, and the link costs under 0.1 ms. Every message carries the
shard's token, checked before anything is decoded; others are dropped.

The env is built, stepped, rendered and closed by one thread of the actor
(the link's), because a GL context belongs to the thread that made it.
This module imports nothing from Ray at import time:
:mod:`arena.backends.ray_env` wraps :class:`EnvShard` with ``ray.remote``.
"""

from __future__ import annotations

import hmac
import logging
import os
import socket
import sys
import threading
from typing import Any

import numpy as np

from arena.backends.ray_codec import pack_reply, unpack_call
from arena.env import StepResult

log = logging.getLogger(__name__)

__all__ = ["EnvShard", "EnvCallError", "MAX_CALL_BYTES"]

#: the largest call message a shard accepts (a chunk of actions for K slots is far smaller)
MAX_CALL_BYTES = 16 * 1024 * 1024


class EnvCallError(Exception):
    """The env raised inside a call: an env failure of the call's episodes, as on one host."""


def _node_address() -> str:
    ray = sys.modules.get("ray")  # in an actor; never initialise Ray from here
    if ray is not None and ray.is_initialized():
        return str(ray.util.get_node_ip_address())
    return "127.0.0.1"


class EnvShard:
    """K slots of an env id, built with the installed plugins of the node the actor runs on.

    Construction does nothing, so that a ``ping`` answers as soon as Ray has
    placed the actor (placement and env building have separate timeouts);
    :meth:`build` then builds the env.
    """

    def __init__(self) -> None:
        self.env: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def ping(self) -> int:
        return os.getpid()

    def start(self, env_id: str, env_config: Any, num_envs: int, cpus: float, token: bytes) -> dict[str, Any]:
        """Build ``num_envs`` slots of ``env_id`` and open the link; returns :meth:`describe` and ``endpoint``."""
        started = threading.Event()
        box: dict[str, Any] = {}
        self._thread = threading.Thread(
            target=self._serve, args=(env_id, env_config, num_envs, cpus, token, started, box), daemon=True
        )
        self._thread.start()
        started.wait()
        if "error" in box:
            raise box["error"]
        return {**self.describe(), "endpoint": box["endpoint"]}

    def watch(self) -> None:
        """Returns when the shard stops; the coordinator holds this call to learn of the actor's death."""
        self._stop.wait()

    def stop(self) -> None:
        """Stop serving and close the env (in the link's thread)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30.0)

    def _build(self, env_id: str, env_config: Any, num_envs: int, cpus: float) -> None:
        from arena.plugins import load_plugins
        from arena.run import make_env
        from arena.vector import IN_PROCESS_VAR

        # software GL (llvmpipe) would start a render thread per core of the node in every shard
        os.environ.setdefault("LP_NUM_THREADS", str(max(1, int(cpus))))
        before = os.environ.get(IN_PROCESS_VAR)
        os.environ[IN_PROCESS_VAR] = "0"  # the family decides at construction: no worker processes here
        try:
            self.env, _ = make_env(load_plugins(), env_id, env_config, num_envs)
        finally:
            if before is None:
                os.environ.pop(IN_PROCESS_VAR, None)
            else:
                os.environ[IN_PROCESS_VAR] = before

    def _serve(
        self, env_id: str, env_config: Any, num_envs: int, cpus: float, token: bytes, started: threading.Event,
        box: dict[str, Any],
    ) -> None:  # fmt: skip
        import zmq

        try:
            self._build(env_id, env_config, num_envs, cpus)
            ctx = zmq.Context()
            sock = ctx.socket(zmq.ROUTER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.MAXMSGSIZE, MAX_CALL_BYTES)
            address = _node_address()
            port = sock.bind_to_random_port(f"tcp://{address}")
            box["endpoint"] = f"tcp://{address}:{port}"
        except BaseException as exc:  # noqa: BLE001 - start() raises it in the caller
            box["error"] = exc
            started.set()
            return
        started.set()
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                if not poller.poll(100):
                    continue
                frames = sock.recv_multipart()
                # [peer, token, seq, call]; anything else, or a wrong token, is dropped undecoded
                if len(frames) != 4 or not hmac.compare_digest(frames[1], token):
                    log.warning("shard: dropped a message that is not from its coordinator")
                    continue
                try:
                    status, payload = b"ok", self.call(frames[3])
                except EnvCallError as exc:  # the env raised: an env failure of these episodes
                    status, payload = b"raised", str(exc).encode()
                except Exception as exc:  # noqa: BLE001 - the coordinator replaces the shard
                    log.exception("shard call failed")
                    status, payload = b"fail", f"{type(exc).__name__}: {exc}".encode()
                sock.send_multipart([frames[0], frames[2], status, payload])
        finally:
            sock.close(0)
            ctx.term()
            if self.env is not None:
                self.env.close()
                self.env = None

    def describe(self) -> dict[str, Any]:
        """The spec and where this shard runs (host, pid, Ray node id)."""
        node = ""
        ray = sys.modules.get("ray")  # in an actor; never initialise Ray from here
        if ray is not None and ray.is_initialized():
            try:
                node = ray.get_runtime_context().get_node_id()
            except Exception:  # noqa: BLE001 - only for the record
                pass
        return {"spec": self.env.spec, "host": socket.gethostname(), "pid": os.getpid(), "node_id": node}

    def call(self, message: bytes) -> bytes:
        """Run one packed call (:mod:`arena.backends.ray_codec`) on this shard's slots."""
        c = unpack_call(message)
        ids, render = c["ids"], c["render"]
        try:
            if c["kind"] == "reset":
                res = self.env.reset(ids, c["episodes"], render)
            elif c["kind"] == "step":
                res = self.env.step_chunk(ids, c["actions"], c["counts"], render)
            elif c["kind"] == "observe":
                obs = self.env.observe(ids, render)
                res = StepResult(np.asarray(ids, np.int64), np.zeros(len(ids), bool), [None] * len(ids), obs)
            else:
                raise ValueError(f"unknown shard call {c['kind']!r}")
        except Exception as exc:  # noqa: BLE001 - the loop records it as it does on one host
            raise EnvCallError(f"{type(exc).__name__}: {exc}") from exc
        return pack_reply(res, ids, render, c["kind"] == "reset", self.env.render_count())
