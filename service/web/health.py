"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Response, get

from service.deps import Deps
from service.store import logs
from service.web.params import AppDeps
from service.web.problems import MEDIA_TYPE, problem_parts


@get("/healthz", operation_id="health", include_in_schema=True, tags=["ops"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", operation_id="ready", tags=["ops"])
async def readyz(deps: AppDeps) -> Response[dict[str, Any]]:
    checks = await backend_checks(deps)
    ready = all(v == "ok" for v in checks.values())
    if ready:
        return Response({"status": "ready", "checks": checks})
    body, headers = problem_parts(
        "/readyz", 503, "unavailable", "Not ready", "A backing service is down.", {"checks": checks}
    )
    return Response(body, status_code=503, media_type=MEDIA_TYPE, headers=headers)


async def backend_checks(deps: Deps) -> dict[str, str]:
    """`postgres` and `redis`: `ok`, or `down: <why>` (no answer in 2 s counts)."""
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(deps.pool.fetchval("SELECT 1"), 2)
        checks["postgres"] = "ok"
    except Exception as exc:
        checks["postgres"] = f"down: {type(exc).__name__}"
    try:
        await asyncio.wait_for(logs.ping(deps.scripts), 2)
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"down: {type(exc).__name__}"
    return checks
