"""Every keyed route is guarded by its roles, declared once (`service.web.auth.requires`)."""

from __future__ import annotations

import inspect
import re

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.testing import AsyncTestClient

from service.infra.settings import Settings
from service.web.app import create_app

KEYED = re.compile(r"^/api/(admin|agent|staff)/")


def _handlers(app: Litestar) -> list[tuple[str, str, HTTPRouteHandler]]:
    found = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if isinstance(handler, HTTPRouteHandler):
                for method in sorted(handler.http_methods):
                    found.append((method, route.path, handler))
    return found


def _role_guards(handler: HTTPRouteHandler) -> list[object]:
    return [g for g in handler.resolve_guards() if g.__qualname__.startswith("requires.")]


def test_every_keyed_route_and_every_handler_reading_who_has_a_role_guard(
    settings: Settings,
) -> None:
    app = create_app(settings)
    unguarded = []
    for method, path, handler in _handlers(app):
        reads_who = "who" in inspect.signature(handler.fn).parameters
        if (KEYED.match(path) or reads_who) and not _role_guards(handler):
            unguarded.append(f"{method} {path}")
    assert not unguarded
    assert len([h for _, p, h in _handlers(app) if KEYED.match(p)]) > 30


async def test_every_keyed_route_refuses_a_request_without_a_key(settings: Settings) -> None:
    app = create_app(msgspec.structs.replace(settings, background=False))
    routes = [(m, p) for m, p, _ in _handlers(app) if KEYED.match(p) and m != "OPTIONS"]
    async with AsyncTestClient(app) as client:
        for method, path in routes:
            url = re.sub(r"\{\w+:int\}", "1", re.sub(r"\{\w+:str\}", "x", path))
            answer = await client.request(method, url, headers={"Origin": settings.base_url})
            assert answer.status_code == 401, (method, path, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")


async def test_a_role_too_low_is_forbidden_and_admin_passes_every_guard(
    client: AsyncTestClient,  # type: ignore[type-arg]
    admin_key: str,
) -> None:
    made = await client.post(
        "/api/admin/keys",
        json={"role": "agent", "label": "desk phone"},
        headers={"Authorization": f"Bearer {admin_key}"},
    )
    assert made.status_code == 201, made.text
    agent = {"Authorization": f"Bearer {made.json()['key']}"}
    refused = await client.get("/api/admin/keys", headers=agent)
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/forbidden")
    assert (await client.get("/api/admin/launches", headers=agent)).status_code == 403
    assert (await client.get("/api/agent/customers?q=x", headers=agent)).status_code != 403
    admin = {"Authorization": f"Bearer {admin_key}"}
    assert (await client.get("/api/admin/keys", headers=admin)).status_code == 200
    assert (await client.get("/api/agent/customers?q=x", headers=admin)).status_code != 403
