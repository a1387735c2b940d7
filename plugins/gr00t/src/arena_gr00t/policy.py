"""The ``gr00t`` policy family: a remote GR00T policy server behind arena's Policy interface.

One ``infer`` call is one batched ``get_action`` carrying every env that needs a chunk
(the client splits it over replicas). ``submit`` encodes the request in the caller's
thread and sends it from one request thread, so the evaluator's pipelined stages step
other slots while the server infers (REQ sockets carry one request at a time, so the
stages' queries queue on that thread). Keys are translated by a mapping selected per
embodiment (translator registry ``gr00t:<embodiment>``, or ``--mapping``), and everything
that does not fit is reported by ``describe()`` as a problem, so ``arena check`` shows it and
``arena eval`` refuses to start.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import attrs
import numpy as np

from arena.contract import ActionChunk, EnvSpec, Observation
from arena.errors import ArenaError, PolicyError
from arena.policy import Policy, PolicyDescription
from arena.remote.keymap import resolve_named_mapping
from arena.remote.policy import remote_fields
from arena.validators import at_least, one_of
from arena_gr00t.mapping import PACKAGED_MAPPINGS, Gr00tMapping, packaged_mapping
from arena_gr00t.translator import FORMS, Translator
from arena_gr00t.wire.client import Gr00tClient
from arena_gr00t.wire.codec import DEFAULT_MAX_MESSAGE_BYTES
from arena_gr00t.wire.errors import Gr00tError, Gr00tServerError
from arena_gr00t.wire.transport import DEFAULT_PORT, host_label, parse_hosts

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


def _unreachable(hosts: Sequence[tuple[str, int]], timeout_s: float) -> list[str]:
    """A message per server whose port refuses TCP connections (fast and clear, before any retries)."""
    out = []
    for host, port in hosts:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                pass
        except OSError as exc:
            reason = "connection refused" if isinstance(exc, ConnectionRefusedError) else (exc.strerror or str(exc))
            out.append(
                f"GR00T server at {host_label(host, port)} is not reachable ({reason}); start one "
                f"(e.g. `arena-gr00t serve --policy expert --env ENV --port {port}`) or fix --host/--port"
            )
    return out


class Gr00tPolicy(Policy):
    """A remote Isaac-GR00T policy server (ZeroMQ + msgpack), keys translated by a per-embodiment mapping."""

    Config = Gr00tConfig

    def __init__(self, config: Gr00tConfig, env_spec: EnvSpec, num_envs: int) -> None:
        super().__init__(config, env_spec, num_envs)
        token = config.token or os.environ.get(TOKEN_ENV) or None
        self.hosts = parse_hosts(config.host, config.port)
        # No request here: connecting happens in describe()/infer(), where failures become
        # preflight problems rather than construction errors.
        self.client = Gr00tClient(
            self.hosts,
            api_token=token,
            timeout_s=config.timeout,
            retries=config.retries,
            deadline_s=config.deadline,
            backoff_s=config.backoff,
            max_backoff_s=max(config.max_backoff, config.backoff),
            max_message_bytes=config.max_message_bytes,
        )
        self.translator: Translator | None = None
        self.form: str | None = None
        self._problems: list[str] | None = None
        self._info: dict[str, str] = {}
        self._requests: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ setup

    def _mapping(self) -> Gr00tMapping:
        if self.config.mapping:
            packaged = {name: packaged_mapping(name) for name in PACKAGED_MAPPINGS}
            return resolve_named_mapping(Gr00tMapping, self.config.mapping, packaged)
        return Gr00tMapping.registered(self.env_spec)

    def _prepare(self) -> list[str]:
        """Read the modality config, build the translator, detect the form, probe; once."""
        if self._problems is not None:
            return self._problems
        problems: list[str] = []
        info = {"server": ",".join(host_label(h, p) for h, p in self.hosts)}
        self._problems, self._info = problems, info
        try:
            mapping = self._mapping()
        except ArenaError as exc:  # MappingError, or a plugin failing to load
            problems.append(str(exc))
            return problems
        unreachable = _unreachable(self.hosts, min(2.0, self.config.timeout))
        if unreachable:
            problems.extend(unreachable)
            return problems
        try:
            modality = self.client.get_modality_config()
            # A batch is split across replicas: they must all serve the same model.
            for i in range(1, len(self.hosts)):
                other = self.client.call("get_modality_config", replica=i)
                if other != modality:
                    problems.append(
                        f"replicas disagree: the modality config of {host_label(*self.hosts[i])} differs from "
                        f"that of {host_label(*self.hosts[0])}; a batch split across them would mix models"
                    )
        except Gr00tError as exc:
            problems.append(f"get_modality_config failed: {exc}")
            return problems
        translator = Translator(modality, mapping, self.env_spec, self.num_envs)
        self.translator = translator
        problems.extend(translator.problems)
        info.update(translator.info())
        form, how, reply = self._detect_form(translator, problems)
        self.form = form
        info["observation form"] = f"{form} ({how})"
        if reply is not None:
            try:
                translator.decode_actions(reply, 1)
            except PolicyError as exc:
                problems.append(f"probe: {str(exc).removeprefix('gr00t: ')}")
        for p in problems:
            log.debug("gr00t preflight problem: %s", p)
        return problems

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
                action, _info = self.client.get_action(translator.probe_observation(form))
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

    def describe(self) -> PolicyDescription:
        problems = self._prepare()
        t = self.translator
        return PolicyDescription(
            family="gr00t",
            action_horizon=max(1, t.action_horizon) if t else 1,
            execution_horizon=None,
            cameras=t.cameras if t else {},
            state=t.state_sizes if t else {},
            action_dim=self.env_spec.action_dim,
            uses_instruction=t.uses_instruction if t else False,
            info=dict(self._info),
            problems=list(problems),
            stages=2,  # a remote server: hide its latency behind the other group's env steps
        )

    def reset(self, env_ids: Sequence[int], seeds: Sequence[int] | None = None) -> None:
        # Per-env history only: the server's `reset` resets the whole (shared) policy.
        if self.translator is not None:
            self.translator.reset(env_ids)

    def _encode(self, observation: Observation, env_mask: np.ndarray) -> tuple[np.ndarray, Any]:
        problems = self._prepare()
        if problems:
            raise PolicyError("gr00t policy cannot run: " + "; ".join(problems))
        assert self.translator is not None and self.form is not None
        rows = np.flatnonzero(env_mask)
        env_ids = observation.env_ids[rows]
        if not len(rows):
            return env_ids, None
        return env_ids, self.translator.encode(observation, rows, self.form)

    def _request(self, env_ids: np.ndarray, native: Any) -> ActionChunk:
        assert self.translator is not None
        if native is None:
            return ActionChunk(
                np.zeros((0, self.translator.action_horizon, self.env_spec.action_dim), np.float32), env_ids
            )
        try:
            action, _info = self.client.get_action(native)
        except Gr00tError as exc:
            raise PolicyError(f"gr00t: get_action for env(s) {env_ids.tolist()} failed: {exc}") from exc
        return ActionChunk(self.translator.decode_actions(action, len(env_ids)), env_ids)

    def infer(self, observation: Observation, env_mask: np.ndarray) -> ActionChunk:
        return self._request(*self._encode(observation, env_mask))

    def submit(self, observation: Observation, env_mask: np.ndarray) -> Future[ActionChunk]:
        """Encode now (the rows are read before returning), send and decode on the request thread."""
        env_ids, native = self._encode(observation, env_mask)
        if self._requests is None:
            self._requests = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gr00t-request")
        return self._requests.submit(self._request, env_ids, native)

    def close(self) -> None:
        if self._requests is not None:
            self._requests.shutdown(wait=True, cancel_futures=True)
            self._requests = None
        self.client.close()
