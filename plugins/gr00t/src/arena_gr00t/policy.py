"""The ``gr00t`` policy family: a remote GR00T policy server behind arena's Policy interface.

The kit's :class:`~arena.remote.policy.RemotePolicy` in its batched form: one ``infer``
call is one batched ``get_action`` carrying every env that needs a chunk, split into one
contiguous piece per live replica by the kit's pool (a replica lost after its client's
retries is marked down and its piece re-sent to another). ``submit`` encodes the request in
the caller's thread and sends it from the pool's threads, so the evaluator's pipelined
stages step other slots while the server infers (one client per replica: REQ sockets carry
one request at a time, so the stages' queries queue on it). Keys are translated by a mapping selected per
embodiment (translator registry ``gr00t:<embodiment>``, or ``--mapping``), and everything
that does not fit is reported by ``describe()`` as a problem, so ``arena check`` shows it and
``arena eval`` refuses to start.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from arena.contract import EnvSpec, Observation
from arena.errors import PolicyError
from arena.remote.fanout import ReplicaPool
from arena.remote.policy import RemotePolicy, remote_fields
from arena.validators import at_least, one_of
from arena_gr00t.mapping import PACKAGED_MAPPINGS, Gr00tMapping, packaged_mapping
from arena_gr00t.translator import FORMS, Translator
from arena_gr00t.wire.client import Gr00tClient
from arena_gr00t.wire.codec import DEFAULT_MAX_MESSAGE_BYTES
from arena_gr00t.wire.errors import Gr00tConnectionError, Gr00tError, Gr00tServerError
from arena_gr00t.wire.observation import slice_batch
from arena_gr00t.wire.transport import DEFAULT_PORT, host_label

__all__ = ["Gr00tConfig", "Gr00tPolicy", "TOKEN_ENV"]

log = logging.getLogger(__name__)

TOKEN_ENV = "ARENA_GR00T_API_TOKEN"
"""Environment variable read for the API token when --token is not given (keeps it out of `ps`)."""


_F = remote_fields(
    "GR00T",
    DEFAULT_PORT,
    TOKEN_ENV,
    tuple(PACKAGED_MAPPINGS),
    timeout_s=10.0,
    spread="each batch is split across them",
    token_help="API token sent in every request (the server's api_token)",
    schemes=("tcp",),
    prefix="gr00t",
)


@attrs.define
class Gr00tConfig:
    """Client flags of ``--policy gr00t``."""

    host: str = _F.host
    port: int = _F.port
    token: str | None = _F.token
    timeout: float = _F.timeout
    retries: int = attrs.field(
        default=3,
        validator=at_least(0),
        metadata={"identity": False, "help": "extra attempts after a timeout or socket error"},
    )
    deadline: float | None = attrs.field(
        default=None,
        validator=at_least(0, strict=True),
        metadata={
            "identity": False,
            "help": "cap in seconds on one call, attempts and backoff included (none: retries decide)",
        },
    )
    backoff: float = attrs.field(
        default=0.05,
        validator=at_least(0),
        metadata={"identity": False, "help": "first pause in seconds between attempts (doubles)"},
    )
    max_backoff: float = attrs.field(
        default=1.0,
        validator=at_least(0),
        metadata={"identity": False, "help": "longest pause in seconds between attempts"},
    )
    mapping: str | None = _F.mapping
    observation_form: str = attrs.field(
        default="auto",
        validator=one_of("auto", *FORMS),
        metadata={"help": "nested, flat (servers started with --use-sim-policy-wrapper), or auto-detect"},
    )
    probe: bool = attrs.field(
        default=True,
        metadata={
            "identity": False,
            "help": "at preflight send one get_action with a zero observation to detect the form and check action shapes",
        },
    )
    max_message_bytes: int = attrs.field(
        default=DEFAULT_MAX_MESSAGE_BYTES,
        validator=at_least(1),
        metadata={"identity": False, "help": "largest reply accepted, in bytes"},
    )


class Gr00tPolicy(RemotePolicy):
    """A remote Isaac-GR00T policy server (ZeroMQ + msgpack), keys translated by a per-embodiment mapping."""

    Config = Gr00tConfig
    protocol = "GR00T"
    family = "gr00t"
    default_port = DEFAULT_PORT
    token_env = TOKEN_ENV
    mapping_class = Gr00tMapping
    packaged_mappings = {name: packaged_mapping(name) for name in PACKAGED_MAPPINGS}
    batched = True
    request_name = "get_action"

    def __init__(self, config: Gr00tConfig, env_spec: EnvSpec, num_envs: int) -> None:
        super().__init__(config, env_spec, num_envs)
        self.form: str | None = None

    # ------------------------------------------------------------------ the wire

    def connect(self, host: str, port: int) -> Gr00tClient:
        """One client per replica: REQ sockets carry one request at a time, retried per the flags."""
        return Gr00tClient(
            [(host, port)],
            api_token=self.token,
            timeout_s=self.config.timeout,
            retries=self.config.retries,
            deadline_s=self.config.deadline,
            backoff_s=self.config.backoff,
            max_backoff_s=max(self.config.max_backoff, self.config.backoff),
            max_message_bytes=self.config.max_message_bytes,
        )

    def request(self, connection: Gr00tClient, native: Mapping[str, Any]) -> dict[str, Any]:
        action, _info = connection.get_action(native)
        return action

    def split(self, native: Mapping[str, Any], start: int, stop: int) -> Any:
        return slice_batch(native, start, stop)

    def decode_batch(self, reply: Mapping[str, Any], rows: int) -> np.ndarray:
        return self.translator.decode_actions(reply, rows)

    def encode(self, observation: Observation, rows: np.ndarray) -> dict[str, Any]:
        return self.translator.encode(observation, rows, self.form)

    # ------------------------------------------------------------------ preflight

    def make_translator(self, mapping: Gr00tMapping) -> None:
        return None  # built from the server's modality config in connected()

    def connections_per_replica(self) -> int:
        return 1

    def open_pool(self) -> ReplicaPool[Gr00tClient]:
        return ReplicaPool(self.replicas, self.connect, per_replica=1, name="gr00t", error=Gr00tConnectionError)

    def connected(self, mapping: Gr00tMapping, problems: list[str]) -> None:
        """Read the modality config (every replica's: a batch split across them must meet one model)."""
        clients = self.pool.connections
        try:
            modality = clients[0].get_modality_config()
            for i in range(1, len(clients)):
                if clients[i].get_modality_config() != modality:
                    problems.append(
                        f"replicas disagree: the modality config of {host_label(*self.replicas[i])} differs from "
                        f"that of {host_label(*self.replicas[0])}; a batch split across them would mix models"
                    )
        except Gr00tError as exc:
            problems.append(f"get_modality_config failed: {exc}")
            return
        self.translator = Translator(modality, mapping, self.env_spec, self.num_envs)
        self.action_horizon = max(1, self.translator.action_horizon)
        problems.extend(self.translator.problems)

    def probe(self, mapping: Gr00tMapping, problems: list[str]) -> None:
        """Detect the observation form and check the probe's action shapes."""
        form, how, reply = self._detect_form(self.translator, problems)
        self.form = form
        self._info["observation form"] = f"{form} ({how})"
        if reply is not None:
            try:
                self.translator.decode_actions(reply, 1)
            except PolicyError as exc:
                problems.append(self.probe_problem(exc))

    def _detect_form(self, translator: Translator, problems: list[str]) -> tuple[str, str, Any]:
        """(form, how it was chosen, the probe's action map or None)."""
        wanted = self.config.observation_form
        if wanted == "auto" and translator.prefixed:
            wanted, how = "flat", "detected: modality keys carry video./state./action. prefixes"
        elif wanted != "auto":
            how = "--observation-form"
        else:
            how = ""
        if problems or not self.config.probe:
            if wanted == "auto":
                why = "probe disabled" if not self.config.probe else "preflight problems"
                return "nested", f"not detected ({why}); defaulting to nested", None
            return wanted, how, None
        candidates = FORMS if wanted == "auto" else (wanted,)
        refused: dict[str, str] = {}
        for form in candidates:
            try:
                probe = translator.probe_observation(form)
                action = self.pool.submit(lambda c, p=probe: self.request(c, p)).result()
            except Gr00tServerError as exc:
                log.debug("probe in %s form refused: %s", form, exc.message)
                refused[form] = exc.message
                continue
            except Gr00tError as exc:
                problems.append(f"probe get_action failed: {exc}")
                return (form if wanted == "auto" else wanted), how or "not detected", None
            if wanted == "auto":
                how = (
                    "detected: the server accepted a nested probe"
                    if form == "nested"
                    else "detected: the server refused a nested probe and accepted a flat one"
                )
            return form, how, action
        detail = "; ".join(f"{f} form: {m}" for f, m in refused.items())
        problems.append(f"the server refused the probe observation ({detail})")
        if wanted == "auto":
            return "nested", "not detected (the server refused both forms); defaulting to nested", None
        return wanted, how, None

    # ------------------------------------------------------------------ Policy

    def reset(self, env_ids: Sequence[int], seeds: Sequence[int] | None = None) -> None:
        # Per-env history only: the server's `reset` resets the whole (shared) policy.
        if self.translator is not None:
            self.translator.reset(env_ids)
