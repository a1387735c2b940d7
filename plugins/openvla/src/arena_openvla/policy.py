"""The ``openvla`` policy family: OpenVLA REST servers behind arena's Policy interface.

Everything but the wire is the kit's :class:`~arena.remote.policy.RemotePolicy`: replicas,
the fan-out pool (one observation per request, as OpenVLA has no batch form), the mapping,
the preflight probe. This module adds the connection, ``unnorm_key`` and the reply check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from arena.remote.policy import RemotePolicy, remote_fields
from arena.remote.translate import KeyTranslator
from arena.validators import at_least
from arena_openvla.mapping import PACKAGED_MAPPINGS, OpenvlaMapping, packaged_mapping
from arena_openvla.wire.http import DEFAULT_PORT, ActConnection

__all__ = ["OpenvlaConfig", "OpenvlaPolicy", "TOKEN_ENV"]

TOKEN_ENV = "OPENVLA_TOKEN"

_F = remote_fields("openvla", DEFAULT_PORT, TOKEN_ENV, tuple(PACKAGED_MAPPINGS))


@attrs.define
class OpenvlaConfig:
    """Client flags of ``--policy openvla``."""

    host: str = _F.host
    port: int = _F.port
    token: str | None = _F.token
    timeout: float = _F.timeout
    mapping: str | None = _F.mapping
    connections_per_host: int | None = _F.connections_per_host
    unnorm_key: str | None = attrs.field(
        default=None,
        metadata={"help": "dataset statistics to un-normalise actions with (default: the mapping's, else none)"},
    )
    double_encode: bool = attrs.field(
        default=False,
        metadata={"identity": False, "help": 'send {"encoded": "<json>"} bodies (for servers without json-numpy)'},
    )
    max_message_bytes: int = attrs.field(
        default=1 << 20,
        validator=at_least(1024),
        metadata={"identity": False, "help": "largest reply accepted, in bytes (default: 1 MiB)"},
    )


class OpenvlaTranslator(KeyTranslator):
    label = "openvla"


class OpenvlaPolicy(RemotePolicy):
    """OpenVLA's ``POST /act`` (json-numpy), requests fanned out over replicas."""

    Config = OpenvlaConfig
    protocol = "openvla"
    default_port = DEFAULT_PORT
    token_env = TOKEN_ENV
    mapping_class = OpenvlaMapping
    translator_class = OpenvlaTranslator
    packaged_mappings = {n: packaged_mapping(n) for n in PACKAGED_MAPPINGS}

    @property
    def unnorm_key(self) -> str | None:
        mapping = self.translator.mapping if self.translator else None
        return self.config.unnorm_key or getattr(mapping, "unnorm_key", None)

    def connect(self, host: str, port: int) -> ActConnection:
        return ActConnection(
            host,
            port,
            timeout_s=self.config.timeout,
            token=self.token,
            max_reply_bytes=self.config.max_message_bytes,
            double_encoded=self.config.double_encode,
        )

    def request(self, connection: ActConnection, native: Mapping[str, Any]) -> np.ndarray:
        body = dict(native)
        if self.unnorm_key:
            body["unnorm_key"] = self.unnorm_key
        return connection.act(body)

    def reply_actions(self, reply: np.ndarray) -> np.ndarray:
        assert self.translator is not None
        return self.translator.check_actions(reply, "reply", ndim=reply.ndim if reply.ndim in (1, 2) else 1)

    def extra_info(self) -> dict[str, str]:
        return {"unnorm_key": self.unnorm_key or "none (the server's default)"}
