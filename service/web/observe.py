"""Every HTTP request counted, timed, logged and given a request id, around the fast
lane and the app.

`Observed` is the outermost ASGI wrapper (`service/web/asgi.py`), so the two requests
answered beside the framework (`service/web/fastpath.py`) are counted like the rest.
Each answer carries `X-Request-Id`: the one a trusted proxy sent (`FAIRDROP_TRUSTED_PROXIES`),
if it is short and plain, else a new one; problem details carry it as `request_id`
(`service.infra.logs.REQUEST_ID`), and so does the request's JSON log line.
The route is the handler's operation id (a fast lane names the one it stands for in
`scope[ROUTE]`), else the route's path template, else `unmatched`: never a raw path,
so the label's values stay few.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any, cast

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from service.infra import logs, metrics
from service.infra.settings import Settings
from service.web.forwarded import from_trusted, scope_address

_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_HEADER = b"x-request-id"

ROUTE = "fairdrop.route"
"""Scope key under which a fast lane names the routed handler it answers for."""


def name_route(scope: Scope, route: str) -> None:
    """Count this request under `route` (a fast lane: the routed handler it stands for)."""
    cast("dict[str, Any]", scope)[ROUTE] = route


def route_of(scope: Scope) -> str:
    named = scope.get(ROUTE)
    if named:
        return str(named)
    handler = scope.get("route_handler")
    operation = getattr(handler, "operation_id", None)
    if isinstance(operation, str) and operation:
        return operation
    template = scope.get("path_template")
    return str(template) if template and handler is not None else "unmatched"


def request_id(scope: Scope, settings: Settings) -> str:
    """The request's id: a trusted proxy's, if safe to repeat in headers and logs, else new."""
    trusted = settings.trusted_networks
    if trusted and from_trusted(scope, trusted):
        for name, value in scope["headers"]:
            if name == _HEADER:
                given = value.decode("latin-1")
                if _SAFE_ID.fullmatch(given):
                    return given
                break
    return secrets.token_hex(16)


class Observed:
    """ASGI wrapper: counts, times, logs each HTTP request and gives it an id (see the
    module's docstring)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        logs.configure(settings.log_format)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid = request_id(scope, self.settings)
        header = (_HEADER, rid.encode())
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        token = logs.REQUEST_ID.set(rid)
        try:
            await self.app(scope, receive, sending)
        finally:
            logs.REQUEST_ID.reset(token)
            if status:
                self._done(scope, rid, status, time.perf_counter() - start)

    def _done(self, scope: Scope, rid: str, status: int, seconds: float) -> None:
        route = route_of(scope)
        metrics.observe_request(route, status, seconds)
        if logs.json_lines:
            logs.request(
                method=cast("HTTPScope", scope)["method"],
                route=route,
                status=status,
                duration_ms=round(seconds * 1000, 2),
                request_id=rid,
                client=scope_address(scope, self.settings.trusted_networks),
            )
