"""The ``libero`` env family: ids, validation, construction."""

from __future__ import annotations

from arena.env import EnvFamily, VectorEnv
from arena_libero.config import LiberoConfig
from arena_libero.tasks import env_ids, tasks_of

__all__ = ["LiberoEnvFamily"]


class LiberoEnvFamily(EnvFamily):
    """LIBERO: ``libero/<suite>`` (spatial, object, goal, 10, 90) and ``libero/<suite>/<task>``."""

    name = "libero"
    Config = LiberoConfig

    def ids(self) -> list[str]:
        return env_ids()

    def make(self, env_id: str, config: LiberoConfig, num_envs: int) -> VectorEnv:
        env_id = env_id.removeprefix(f"{self.name}/")
        tasks_of(env_id)  # raises RegistryError naming the valid ids
        from arena_libero.vector_env import LiberoVectorEnv  # imports robosuite: only when an env is built

        return LiberoVectorEnv(env_id, config, num_envs)
