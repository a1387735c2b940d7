"""The policy interface: what every policy family (local model, remote client, scripted expert) implements."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import numpy as np

from arena.contract import ActionChunk, EnvSpec, Observation
from arena.futures import completed

if TYPE_CHECKING:  # pragma: no cover
    from arena.results import EpisodeRecord

__all__ = ["Policy", "PolicyDescription", "NoConfig"]


@attrs.define
class NoConfig:
    """Config of a family that takes no options."""


@attrs.define
class PolicyDescription:
    """What a policy expects from the env, for preflight (`arena check`).

    ``cameras``: env camera name -> (H, W) the policy needs (None: any size).
    ``state``: env state group name -> size the policy needs (None: any size).
    ``action_dim``: the action width it produces (None: whatever the env has).
    ``action_horizon``: chunk length it returns; ``execution_horizon`` the
    number of those actions it recommends executing before asking again.
    ``problems``: mismatches the policy found itself (e.g. a translator that
    cannot map a server key); each makes `arena check` fail.
    ``stages``: the pipeline stages the policy suggests when ``--stages`` is
    not given: 1 for in-process compute, 2 for a remote server, whose query
    latency other slots' env steps can hide.
    """

    family: str
    action_horizon: int = 1
    execution_horizon: int | None = None
    cameras: Mapping[str, tuple[int, int] | None] = attrs.field(factory=dict)
    state: Mapping[str, int | None] = attrs.field(factory=dict)
    action_dim: int | None = None
    uses_instruction: bool = False
    info: Mapping[str, str] = attrs.field(factory=dict)
    problems: list[str] = attrs.field(factory=list)
    stages: int = 1


class Policy(abc.ABC):
    """A policy evaluated closed loop on a batch of ``num_envs`` env slots.

    Subclasses set ``Config`` to an attrs class: its fields become flags of
    ``arena eval`` when the family is selected with ``--policy``. Policies are
    context managers so remote clients are always closed.
    """

    Config: ClassVar[type] = NoConfig

    def __init__(self, config: Any, env_spec: EnvSpec, num_envs: int) -> None:
        self.config = config
        self.env_spec = env_spec
        self.num_envs = num_envs

    def reset(self, env_ids: Sequence[int], seeds: Sequence[int] | None = None) -> None:
        """A new episode starts in slots ``env_ids``; drop any per-env state.

        ``seeds`` (one per env id) lets stochastic policies be reproducible per
        episode whatever the number of envs.
        """

    @abc.abstractmethod
    def infer(self, observation: Observation, env_mask: np.ndarray) -> ActionChunk:
        """Action chunks for the envs where ``env_mask`` (bool, N) is true.

        ``observation`` holds all N slots; only masked rows are current. The
        result has one row per masked env, in slot order, with their env ids.
        """

    def submit(self, observation: Observation, env_mask: np.ndarray) -> Future[ActionChunk]:
        """Start :meth:`infer` for the masked envs; the future gives the chunk.

        Contract: ``submit`` has read every row it needs of ``observation``
        before it returns, so the env may overwrite rows (other slots step)
        while the query is in flight. The default runs ``infer`` now and
        returns a completed future; remote policies encode the request here
        and send it without waiting for the reply.
        """
        try:
            return completed(self.infer(observation, env_mask))
        except Exception as exc:  # noqa: BLE001 - delivered through the future, raised by result()
            future: Future[ActionChunk] = Future()
            future.set_exception(exc)
            return future

    def episode_end(self, env_ids: Sequence[int], records: Sequence[EpisodeRecord]) -> None:
        """Episodes ended in slots ``env_ids`` with ``records`` (recorded outcomes).

        Protocols with episode sessions (tell the server the outcome) hook in
        here; an episode lost to an infrastructure fault is not reported, it
        restarts with :meth:`reset`.
        """

    def describe(self) -> PolicyDescription:
        return PolicyDescription(family=type(self).__name__, action_dim=self.env_spec.action_dim)

    def close(self) -> None:
        """Release connections, processes, devices."""

    def __enter__(self) -> Policy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
