"""The waiting room's status poll, answered beside the framework on its happy path.

It is launch day's hottest request: every waiter polls every few seconds. It needs
neither Redis nor Postgres (the ticket carries the rank, the worker keeps the
counters), so what it costs is the framework: routing, a signature model, a response
object. `FastStatus` wraps the app; a `GET /api/launches/{id}/queue/status` with a
genuine ticket, within its rate limits, is answered here. Anything else (no ticket, a
forged or expired one, a limit reached, a ticket to re-issue after the draw, another
method) goes on to the routed handler, which answers it in full, problem details and
all; so behaviour is the routed handler's, and `tests/test_fastpath.py` checks both
give the same answers.
"""

from __future__ import annotations

import msgspec
from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import Receive, Scope, Send

from service.errors import FairdropError
from service.queue import tickets
from service.web import health
from service.web.auth import TICKET_COOKIE, scope_token
from service.web.queue import answer_status
from service.web.ratelimit import STATUS_PER_ADDRESS, STATUS_PER_TICKET

_PREFIX, _SUFFIX = "/api/launches/", "/queue/status"
_encoder = msgspec.json.Encoder()


class FastStatus:
    """ASGI wrapper around the app (see the module's docstring)."""

    def __init__(self, app: Litestar) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["method"] == "GET":
            path = scope["path"]
            if path.startswith(_PREFIX) and path.endswith(_SUFFIX):
                launch_id = path[len(_PREFIX) : -len(_SUFFIX)]
                if launch_id and "/" not in launch_id:
                    body = await self._answer(scope, launch_id)
                    if body is not None:
                        await _send_json(send, body)
                        return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, launch_id: str) -> bytes | None:
        state = self.app.state
        watch, limiter = state.get("watch"), state.get("limiter")
        if watch is None or limiter is None:
            return None  # not started yet
        try:
            claims = tickets.read(watch.deps, scope_token(scope, TICKET_COOKIE), launch_id)
            client = scope.get("client")
            limiter.check(STATUS_PER_ADDRESS, client[0] if client else "unknown")
            limiter.check(STATUS_PER_TICKET, f"{launch_id}:{claims.registration_id}")
            out = await answer_status(watch.deps, watch, claims)
        except FairdropError:
            return None  # the routed handler explains it
        if out.ticket is not None:
            return None  # a fresh ticket goes out as a cookie: the routed handler sets it
        health.count_response("queueStatus", 200)
        return _encoder.encode(out)


async def _send_json(send: Send, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
