"""Every HTTP request counted and timed, by route, around the fast lane and the app.

`Observed` is the outermost ASGI wrapper (`service/web/asgi.py`), so the two requests
answered beside the framework (`service/web/fastpath.py`) are counted like the rest.
The route is the handler's operation id (a fast lane names the one it stands for in
`scope[ROUTE]`), else the route's path template, else `unmatched`: never a raw path,
so the label's values stay few.
"""

from __future__ import annotations

import time
from typing import Any, cast

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from service.infra import metrics

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


class Observed:
    """ASGI wrapper: counts and times each HTTP request (see the module's docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if status:
                metrics.observe_request(route_of(scope), status, time.perf_counter() - start)
