"""arena's OpenVLA family: the REST client (``--policy openvla``) and ``arena-openvla serve``.

Layout: :mod:`~arena_openvla.wire` (json-numpy bodies, the HTTP connection: OpenVLA's
wire facts only), :mod:`~arena_openvla.mapping` (the kit's key mapping plus
``unnorm_key``), :mod:`~arena_openvla.policy` (the kit's RemotePolicy with three hooks) and
:mod:`~arena_openvla.server` (the reference server). Everything else is
:mod:`arena.remote`.
"""

from __future__ import annotations

from arena_openvla.policy import OpenvlaConfig, OpenvlaPolicy

__all__ = ["OpenvlaConfig", "OpenvlaPolicy"]
