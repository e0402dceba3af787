"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from litestar import Response, get

from service.web.params import AnyRequest, AppDeps
from service.web.problems import MEDIA_TYPE, problem_parts

# Responses by (route, status); problems by type. Per process, as Prometheus expects.
RESPONSES: Counter[tuple[str, int]] = Counter()


def count_response(route: str, status: int) -> None:
    RESPONSES[(route, status)] += 1


@get("/healthz", operation_id="health", include_in_schema=True, tags=["ops"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", operation_id="ready", tags=["ops"])
async def readyz(deps: AppDeps) -> Response[dict[str, Any]]:
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(deps.pool.fetchval("SELECT 1"), 2)
        checks["postgres"] = "ok"
    except Exception as exc:
        checks["postgres"] = f"down: {type(exc).__name__}"
    try:
        await asyncio.wait_for(deps.redis.ping(), 2)
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"down: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    if ready:
        return Response({"status": "ready", "checks": checks})
    body, headers = problem_parts(
        "/readyz", 503, "unavailable", "Not ready", "A backing service is down.", {"checks": checks}
    )
    return Response(body, status_code=503, media_type=MEDIA_TYPE, headers=headers)


@get("/metrics", operation_id="metrics", tags=["ops"], media_type="text/plain; version=0.0.4")
async def metrics(request: AnyRequest, deps: AppDeps) -> str:
    lines = [
        "# HELP fairdrop_http_responses_total HTTP responses by route and status.",
        "# TYPE fairdrop_http_responses_total counter",
    ]
    for (route, status), n in sorted(RESPONSES.items()):
        lines.append(f'fairdrop_http_responses_total{{route="{route}",status="{status}"}} {n}')
    lines += [
        "# HELP fairdrop_db_pool_size Postgres connections in the pool.",
        "# TYPE fairdrop_db_pool_size gauge",
        f"fairdrop_db_pool_size {deps.pool.get_size()}",
        "# HELP fairdrop_db_pool_idle Idle Postgres connections.",
        "# TYPE fairdrop_db_pool_idle gauge",
        f"fairdrop_db_pool_idle {deps.pool.get_idle_size()}",
    ]
    return "\n".join(lines) + "\n"
