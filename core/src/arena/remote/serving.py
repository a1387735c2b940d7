"""Host any arena policy family behind a native server protocol.

The reference servers of the protocol plugins (``arena-gr00t serve``,
``arena-openpi serve``, ``arena-openvla serve``) decode a native request into a canonical
:class:`Observation`, ask a :class:`ServedPolicy` for a chunk, and encode the
reply. This module is the protocol-independent half: building the policy
for an env spec, batching, :class:`ServedHandler` (the base of each family's handler:
which cameras to ask for, one inference at a time, request checks with one set of
messages), the shared ``serve`` command line, and the ``arena-PROTOCOL COMMAND``
dispatch around it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from arena.assembly import RunAssembly
from arena.config import config_from_namespace
from arena.contract import EnvSpec, Observation
from arena.errors import ArenaError, ContractError
from arena.plugins import Plugins, load_plugins, parse_plugin_options
from arena.policy import PolicyDescription
from arena.remote.translate import shape_text
from arena.run import add_family_options, preparse_selection
from arena.validators import int_arg

log = logging.getLogger(__name__)

__all__ = [
    "IMAGE_KEYS",
    "ServedHandler",
    "ServedPolicy",
    "add_image_keys_argument",
    "add_server_arguments",
    "checked_array",
    "command_main",
    "mapping_command",
    "serve_main",
]

#: ``--image-keys``: the cameras the served policy reads (``policy``) or every env camera (``env``)
IMAGE_KEYS = ("policy", "env")


class ServedPolicy:
    """A policy family built for an env's spec, answering batches of up to ``max_batch`` rows."""

    def __init__(
        self,
        policy: str,
        env: str,
        policy_config: Any = None,
        env_config: Any = None,
        plugins: Plugins | None = None,
        max_batch: int = 64,
    ) -> None:
        self.assembly = RunAssembly(plugins or load_plugins())
        with self.assembly.scope():
            self.spec: EnvSpec = self.assembly.spec(env, env_config)
            self.env_id = env
            self.max_batch = max_batch
            self.policy, self.name, _ = self.assembly.policy(policy, policy_config, self.spec, max_batch)
            self.description: PolicyDescription = self.policy.describe()

    def infer(self, observation: Observation, slots: Sequence[int] | None = None) -> np.ndarray:
        """Chunks (B, horizon, A) for the B rows of ``observation``.

        ``slots``: the policy slot of each row (a protocol with sessions keeps one slot per
        session, so per-env state such as frame histories follows the session); default 0..B-1.
        """
        n = observation.num_envs
        if not 1 <= n <= self.max_batch:
            raise ContractError(f"batch size: expected 1..{self.max_batch} observations, got {n}")
        observation.env_ids = np.arange(n) if slots is None else np.asarray(slots, np.int64)
        observation.validate(self.spec)
        with self.assembly.scope():
            chunk = self.policy.infer(observation, np.ones(n, bool))
        return chunk.numpy()

    def reset(self, slots: Sequence[int] | None = None) -> None:
        """A new episode in ``slots`` (default: every slot)."""
        with self.assembly.scope():
            self.policy.reset(list(range(self.max_batch)) if slots is None else list(slots))

    def close(self) -> None:
        self.policy.close()


def checked_array(name: str, value: Any, kind: str, shape: Sequence[Any]) -> np.ndarray:
    """``value`` if it is an ``image`` (uint8) or ``state`` (numeric) array of ``shape``; else a ContractError.

    ``shape`` may hold a name (``"B"``) for an axis of any length. The message names the key,
    the expected and the received dtype and shape.
    """
    ok = isinstance(value, np.ndarray) and (value.dtype == np.uint8 if kind == "image" else value.dtype.kind in "fiu")
    if ok and len(value.shape) == len(shape):
        ok = all(isinstance(want, str) or got == want for got, want in zip(value.shape, shape))
    else:
        ok = False
    if not ok:
        got = f"{value.dtype} {shape_text(value.shape)}" if isinstance(value, np.ndarray) else type(value).__name__
        want = "uint8" if kind == "image" else "float32"
        raise ContractError(f"{name}: expected {want} {shape_text(shape)}, received {got}")
    return value


class ServedHandler:
    """The base of a family's served handler: the served policy, the cameras to ask for, one inference at a time.

    A family's handler decodes its native request into an Observation (checking each key with
    :func:`checked_array`), calls :meth:`infer`, and encodes the chunk (:meth:`action_groups`
    splits it by the env's action groups). ``image_keys`` (``--image-keys``): ask for the cameras
    the served policy reads (``policy``: a state-based expert makes clients render nothing) or
    every env camera (``env``). Arena policies need not be thread-safe, so inferences are serialised.
    """

    def __init__(self, served: ServedPolicy, image_keys: str = "policy") -> None:
        if image_keys not in IMAGE_KEYS:
            raise ValueError(f"image_keys must be one of {IMAGE_KEYS}, got {image_keys!r}")
        self.served = served
        spec, desc = served.spec, served.description
        self.cameras: list[str] = (
            list(spec.cameras) if image_keys == "env" else [c for c in desc.cameras if c in spec.cameras]
        )
        self.horizon = max(1, int(desc.action_horizon))
        self._lock = threading.Lock()

    @property
    def spec(self) -> EnvSpec:
        return self.served.spec

    def infer(self, observation: Observation, slots: Sequence[int] | None = None) -> np.ndarray:
        """Chunks (B, horizon, A) in env action order; ``slots`` as :meth:`ServedPolicy.infer`."""
        with self._lock:
            return self.served.infer(observation, slots)

    def action_groups(self, chunk: np.ndarray, prefix: str = "") -> dict[str, np.ndarray]:
        """(B, H, A) in env order -> ``{prefix + group: (B, H, D) float32}``."""
        return {
            f"{prefix}{g.name}": np.ascontiguousarray(chunk[:, :, self.spec.action_slice(g.name)], dtype=np.float32)
            for g in self.spec.action_groups
        }


def add_image_keys_argument(group: Any, what: str = "image") -> None:
    """``--image-keys policy|env`` (see :class:`ServedHandler`)."""
    group.add_argument(
        "--image-keys",
        choices=IMAGE_KEYS,
        default="policy",
        help=f"{what} keys to ask for: the cameras the served policy reads (policy, default) or every env camera (env)",
    )


def serve_main(
    prog: str,
    description: str,
    argv: Sequence[str] | None,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[ServedPolicy, argparse.Namespace], int],
) -> int:
    """The shared ``serve`` command: ``--policy FAMILY --env ENV [family flags]`` plus the protocol's flags."""
    argv = list(sys.argv[1:] if argv is None else argv)
    known = preparse_selection(argv, "INFO", "%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--policy", required=True, help="policy family to serve (see `arena plugins`)")
    parser.add_argument("--env", required=True, help="env id whose spec defines the served observation/action keys")
    parser.add_argument(
        "--max-batch", type=int_arg(1), default=64, help="largest batch one request may carry (default: 64)"
    )
    parser.add_argument("--plugin", action="append", default=[], metavar="no:NAME", help="block a plugin by name")
    parser.add_argument("--log-level", default="INFO", type=str.upper, choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    add_arguments(parser)
    try:
        plugins = load_plugins(blocked=parse_plugin_options(known.plugin or []))
        classes = add_family_options(parser, plugins, known.policy, known.env)
    except ArenaError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    try:
        configs = {k: config_from_namespace(cls, args) for k, cls in classes.items()}
        served = ServedPolicy(
            args.policy, args.env, configs.get("policy"), configs.get("env"), plugins=plugins, max_batch=args.max_batch
        )
    except ArenaError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    # SIGTERM ends the server like Ctrl-C, so `finally` blocks close sockets and workers.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        return run(served, args)
    except KeyboardInterrupt:
        log.info("%s: stopped", prog)
        return 0
    finally:
        served.close()


def command_main(
    prog: str, usage: str, commands: Mapping[str, Callable[[list[str]], int]], argv: Sequence[str] | None
) -> int:
    """A protocol plugin's command (``arena-gr00t serve ...``): ``commands[COMMAND](rest of argv)``.

    Dispatched by hand, not with argparse subparsers: ``serve`` builds its parser only once
    --policy and --env are known (see :func:`serve_main`).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage, end="")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command in commands:
        return commands[command](rest)
    print(f"{prog}: error: unknown command {command!r}\n\n{usage}", file=sys.stderr, end="")
    return 2


def mapping_command(
    protocol: str,
    packaged: Mapping[str, str],
    embodiments: Mapping[str, str],
    resource: Callable[[str], Any],
    argv: Sequence[str],
) -> int:
    """``arena-PROTOCOL mapping [NAME]``: list the packaged mappings, or print one (a start for --mapping)."""
    parser = argparse.ArgumentParser(
        prog=f"arena-{protocol} mapping", description=f"Print a packaged {protocol} mapping file."
    )
    parser.add_argument("name", nargs="?", choices=sorted(packaged), help="omitted: list the packaged mappings")
    args = parser.parse_args(list(argv))
    if args.name is None:
        auto = {m: e for e, m in embodiments.items()}
        for name in packaged:
            note = (
                f"auto-selected for embodiment {auto[name]!r} ({protocol}:{auto[name]})"
                if name in auto
                else "--mapping " + name
            )
            print(f"{name}\t{note}")
        return 0
    print(resource(args.name).read_text(encoding="utf-8"), end="")
    return 0


def add_server_arguments(
    group: Any, default_port: int, token_env: str, token_help: str, port_zero: bool = True
) -> None:
    """``--host`` (127.0.0.1 by default), ``--port`` and ``--token``: one vocabulary for every reference server."""
    from arena.validators import PORT_RANGE

    group.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, this machine only)")
    low, high = PORT_RANGE
    group.add_argument(
        "--port",
        type=int_arg(low if port_zero else max(1, low), high),
        default=default_port,
        help=f"port to bind{'; 0 picks a free one' if port_zero else ''} (default: {default_port})",
    )
    group.add_argument("--token", default=None, help=f"{token_help} (default: ${token_env}; none: no authentication)")
