"""The ``metaworld`` env family: ids, validation, construction."""

from __future__ import annotations

from arena.env import EnvFamily, VectorEnv
from arena_metaworld.config import MetaWorldConfig
from arena_metaworld.tasks import env_ids, tasks_of

__all__ = ["MetaWorldEnvFamily"]


class MetaWorldEnvFamily(EnvFamily):
    """Meta-World v3: ``metaworld/<task>-v3`` (50 tasks) and the suites ``metaworld/mt10``, ``metaworld/mt50``."""

    name = "metaworld"
    Config = MetaWorldConfig

    def ids(self) -> list[str]:
        return env_ids()

    def make(self, env_id: str, config: MetaWorldConfig, num_envs: int) -> VectorEnv:
        env_id = env_id.removeprefix(f"{self.name}/")
        tasks_of(env_id)  # raises RegistryError listing the valid ids
        from arena_metaworld.vector_env import MetaWorldVectorEnv  # imports mujoco: only when an env is built

        return MetaWorldVectorEnv(env_id, config, num_envs)
