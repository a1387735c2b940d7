"""OpenVLA's errors: the kit's hierarchy with OpenVLA's name in the messages."""

from __future__ import annotations

from arena.remote.errors import RemoteServerError

__all__ = ["OpenvlaServerError"]


class OpenvlaServerError(RemoteServerError):
    """The server failed on a request (a stock server says only ``"error"``: see its log)."""

    protocol = "OpenVLA"
