"""``arena-openvla serve``: any arena policy family behind OpenVLA's ``POST /act``.

The test peer of the family (OpenVLA's own server needs the model) and a way to put a
scripted expert or another model behind an OpenVLA client. Bodies are read as OpenVLA's
server reads them (json-numpy, or the double-encoded form); the mapping says which env
camera ``image`` is and which state groups an extension key such as ``proprio`` holds. The
reply is the first action of the served policy's chunk (OpenVLA answers one action per
request), in the mapping's reply columns. Failures are answered as the stock server does:
HTTP 200 and the JSON string ``"error"`` (the cause is logged here).

Beyond the stock server: 127.0.0.1 by default, a body size limit checked while the body
is read (413), and an optional token (``Authorization: Bearer``, checked before the body
is read; 401) that OpenVLA's own client cannot send. One inference at a time, like one
model on one GPU: concurrency comes from replicas.
"""

from __future__ import annotations

import hmac
import logging

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from arena.errors import PolicyError
from arena.remote.errors import RemoteCodecError
from arena.remote.serving import ServedHandler, ServedPolicy
from arena_openvla.mapping import OpenvlaMapping
from arena_openvla.policy import OpenvlaTranslator
from arena_openvla.wire.codec import ERROR_REPLY, decode_body, encode_reply

__all__ = ["ActHandler", "make_app"]

log = logging.getLogger(__name__)


class ActHandler(ServedHandler):
    """Native body -> canonical observation -> served policy -> native action, for one mapping."""

    def __init__(self, served: ServedPolicy, mapping: OpenvlaMapping) -> None:
        super().__init__(served)
        self.translator = OpenvlaTranslator(mapping, served.spec)
        if self.translator.problems:
            problems = "; ".join(self.translator.problems)
            raise PolicyError(f"mapping {mapping.source} does not fit {served.spec.name}: {problems}")

    def handle(self, data: bytes) -> bytes:
        body, double = decode_body(data)
        desc = self.served.description
        chunk = self.infer(self.translator.decode_observation(body, list(desc.cameras), list(desc.state)))
        return encode_reply(self.translator.to_reply(chunk[0, 0]), double)


def make_app(handler: ActHandler, token: str | None = None, max_body_bytes: int = 16 << 20) -> Starlette:
    """The Starlette app: ``POST /act``."""

    async def act(request: Request) -> Response:
        if token:
            sent = request.headers.get("authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
                return JSONResponse({"detail": "missing or wrong token"}, status_code=401)
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_body_bytes):
            return JSONResponse({"detail": f"body over {max_body_bytes} bytes"}, status_code=413)
        body = bytearray()
        async for piece in request.stream():
            body += piece
            if len(body) > max_body_bytes:
                return JSONResponse({"detail": f"body over {max_body_bytes} bytes"}, status_code=413)
        try:
            reply = await run_in_threadpool(handler.handle, bytes(body))
        except (RemoteCodecError, PolicyError, ValueError) as exc:
            log.warning("POST /act refused: %s", exc)
            return JSONResponse(ERROR_REPLY)
        except Exception:  # noqa: BLE001 - OpenVLA's server answers every failure this way
            log.exception("POST /act failed")
            return JSONResponse(ERROR_REPLY)
        return Response(reply, media_type="application/json")

    return Starlette(routes=[Route("/act", act, methods=["POST"])])
