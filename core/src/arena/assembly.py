"""``RunAssembly``: the one place that turns names into the parts of a run.

``arena.evaluate``, ``arena check`` and the reference servers all build the
env, the policy, the scheduler and the episode plan here, so they cannot
disagree (the scheduler used to be built twice, differently). The run's
plugins reach the policy through :func:`arena.plugins.current_plugins`
only while the assembly's :meth:`scope` is open, never through a global
that outlives the run.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import attrs

from arena.backends import BackendConfig, backend_stages, make_vector_env
from arena.contract import EnvSpec
from arena.env import EpisodeSpec, VectorEnv
from arena.evaluator import plan_episodes
from arena.plugins import Plugins, load_plugins, using_plugins
from arena.policy import Policy, PolicyDescription
from arena.run import build_config, make_policy
from arena.schedulers import ActionScheduler

log = logging.getLogger(__name__)

__all__ = ["RunAssembly", "BuiltScheduler"]


@attrs.define
class BuiltScheduler:
    """A scheduler built for a policy and an env, with the config it was built from."""

    name: str
    scheduler: ActionScheduler
    config: Any


class RunAssembly:
    """Builds the parts of one run from names, with one set of plugins."""

    def __init__(self, plugins: Plugins | None = None) -> None:
        self.plugins = plugins or load_plugins()

    @contextlib.contextmanager
    def scope(self) -> Iterator[RunAssembly]:
        """While open, :func:`arena.plugins.current_plugins` is this run's plugins."""
        with using_plugins(self.plugins):
            yield self

    def env(
        self, env_id: str, config: Any, num_envs: int, backend: BackendConfig | None = None
    ) -> tuple[VectorEnv, Any]:
        """The vector env of ``env_id`` with ``num_envs`` slots (on ``backend``), and its config instance."""
        return make_vector_env(self.plugins, env_id, config, num_envs, backend or BackendConfig())

    def spec(self, env_id: str, config: Any) -> EnvSpec:
        """Only the spec of ``env_id`` (a one-slot env is built and closed again)."""
        vec_env, _ = self.env(env_id, config, 1)
        try:
            return vec_env.spec
        finally:
            vec_env.close()

    def policy(self, policy: Any, config: Any, spec: EnvSpec, num_envs: int) -> tuple[Policy, str, Any]:
        """The policy (family name, Policy subclass or factory), its name and its config instance."""
        return make_policy(self.plugins, policy, config, spec, num_envs)

    def scheduler(
        self, name: str, config: Any, num_envs: int, spec: EnvSpec, description: PolicyDescription
    ) -> BuiltScheduler:
        """The action scheduler ``name`` for this policy's chunks on this env (raises ConfigError)."""
        entry = self.plugins.schedulers.get(name)
        cfg = build_config(entry.config, config)
        made = entry.obj(
            cfg,
            num_envs,
            spec.action_dim,
            max(description.action_horizon, 1),
            hold_action=spec.hold,
            suggested_execution=description.execution_horizon,
        )
        return BuiltScheduler(name, made, cfg)

    @staticmethod
    def plan(spec: EnvSpec, episodes: int, seed: int) -> list[EpisodeSpec]:
        """Every planned episode of the run (see :func:`arena.evaluator.plan_episodes`)."""
        return plan_episodes(spec.tasks, episodes, seed)

    @staticmethod
    def stages(
        requested: int | None, description: PolicyDescription, num_envs: int, backend: BackendConfig | None = None
    ) -> int:
        """The pipeline stages: as requested, else the policy's suggestion capped by the slots
        (on Ray: by the shards, a stage being a group of whole shards)."""
        return backend_stages(requested, int(description.stages or 1), backend or BackendConfig(), num_envs)
