"""Starting or joining Ray for the ray backend, with every listener of a local instance on 127.0.0.1.

Without an address arena starts a private Ray instance for the run and
stops it at the end; with one it joins that cluster and leaves it running.
A Ray already initialised in this process (a notebook, a test session) is
used as it is and left running.

By default Ray advertises the machine's outward address and its gRPC
servers listen on every interface. For the local instance arena keeps Ray
in its single-machine mode (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, read
when ray is imported), in which Ray binds everything to 127.0.0.1. Ray's
authentication mode (``RAY_AUTH_MODE``) is left as the user set it.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from types import ModuleType, TracebackType

from arena.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["import_ray", "RayRuntime", "INSTALL_HINT"]

INSTALL_HINT = 'the ray backend needs Ray: pip install "arena-core[ray]"'
_LOOPBACK_VAR = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def import_ray(local: bool = False) -> ModuleType:
    """``ray``, or a ConfigError saying how to install it.

    ``local``: a private instance will be started, so keep Ray on loopback
    (this must be decided before the first import of ray in this process).
    """
    if local and "ray" not in sys.modules:
        os.environ.setdefault(_LOOPBACK_VAR, "0")
    try:
        ray = importlib.import_module("ray")
    except ImportError:
        raise ConfigError(f"--backend ray: {INSTALL_HINT}") from None
    if local and os.environ.get(_LOOPBACK_VAR) == "0":
        # ray was imported before this call: the constant was read then, set it as the import would have
        constants = importlib.import_module("ray._private.ray_constants")
        constants.ENABLE_RAY_CLUSTER = False
    return ray


class RayRuntime:
    """A context in which Ray is initialised: started here, joined, or found already running."""

    def __init__(self, address: str | None, num_cpus: int | None = None) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.owned = False
        self.ray: ModuleType | None = None

    def __enter__(self) -> RayRuntime:
        ray = import_ray(local=self.address is None)
        self.ray = ray
        if ray.is_initialized():
            log.info("ray backend: using the Ray already initialised in this process")
            return self
        try:
            if self.address is None:
                cpus = max(os.cpu_count() or 1, self.num_cpus or 0)
                log.info("ray backend: starting a local Ray instance (%d CPUs, 127.0.0.1 only)", cpus)
                ray.init(num_cpus=cpus, include_dashboard=False, configure_logging=False, namespace="arena")
            else:
                log.info("ray backend: joining the Ray cluster at %s", self.address)
                ray.init(address=self.address, configure_logging=False, namespace="arena")
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"--backend ray: could not start or reach {where}: {first}") from exc
        self.owned = True
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.owned and self.ray is not None:
            self.ray.shutdown()
            self.owned = False
