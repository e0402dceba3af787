"""A page on another site cannot make a signed-in browser act (CSRF): an unsafe request
that a browser marks cross-site (`Sec-Fetch-Site`) or sends from another `Origin` is
refused, whether it rides on a cookie (the staff session, the shopper's link or
ticket) or signs someone in or out. A request that names its credential in a header
(`Authorization`, `X-API-Key`) cannot be sent by another site's page without CORS,
which fairdrop does not grant, and programs send no `Origin`: both are let through."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from service.auth.apikeys import create_key
from service.clock import FakeClock
from service.deps import Deps
from service.infra.settings import Settings
from service.queue.registrations import issue_token
from service.queue.status import QueueWatch
from service.stock.holds import reserve
from service.web.app import create_app
from service.web.fastpath import FastLane
from tests.serve import selling_launch, tickets_for

Client = AsyncTestClient  # type: ignore[type-arg]
SITE = "http://testserver.local"
EVIL = {"Origin": "https://evil.example"}
SIBLING = {"Sec-Fetch-Site": "same-site", "Origin": "https://shop.testserver.local"}
PROBLEM = "application/problem+json"


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[Client]:
    """The app as granian serves it: the fast lane in front of the routed app."""
    routed = create_app(msgspec.structs.replace(settings, background=False), clock=clock)
    async with AsyncTestClient(FastLane(routed), base_url=SITE) as c:  # type: ignore[arg-type]
        yield c


def _refused(r: object, *, page: bool = False) -> None:
    status, headers, text = r.status_code, r.headers, r.text  # type: ignore[attr-defined]
    assert status == 403, text
    assert "set-cookie" not in headers, "nobody is signed in or out"
    if page:
        assert "text/html" in headers["content-type"] and "another site" in text
    else:
        assert headers["content-type"] == PROBLEM
        assert r.json()["type"].endswith("/cross-origin-request")  # type: ignore[attr-defined]


async def test_sign_in_and_out_only_from_this_site(deps: Deps, app: Client) -> None:
    await selling_launch(deps, units=1, registrations=1)
    key = await create_key(deps.pool, "operator")
    form = {"key": key, "next": "/ops"}

    for headers in (EVIL, SIBLING, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}):
        _refused(await app.post("/staff/login", data=form, headers=headers), page=True)
        _refused(
            await app.post("/staff/login/link", data={"token": "x"}, headers=headers), page=True
        )
        _refused(await app.post("/staff/logout", headers=headers), page=True)

    ours = {"Origin": SITE, "Sec-Fetch-Site": "same-origin"}
    signed = await app.post("/staff/login", data=form, headers=ours, follow_redirects=False)
    assert signed.status_code == 303 and "fd_key=" in signed.headers["set-cookie"]
    # A browser that sends only Origin (no Sec-Fetch-Site), and curl that sends neither.
    for headers in ({"Origin": SITE}, {}):
        again = await app.post("/staff/login", data=form, headers=headers, follow_redirects=False)
        assert again.status_code == 303, again.text


async def test_cookie_requests_from_another_site_are_refused(
    deps: Deps, clock: FakeClock, app: Client
) -> None:
    [reg] = await selling_launch(deps, units=2, registrations=1, limit=1)
    key = await create_key(deps.pool, "operator")
    signed = await app.post("/staff/login", data={"key": key, "next": "/ops"})
    assert signed.status_code == 200 and app.cookies.get("fd_key")
    patch = "/api/admin/launches/drop"

    _refused(await app.patch(patch, json={"admit_rate": 7}, headers=EVIL))
    _refused(await app.post(f"{patch}/transitions", json={"action": "pause"}, headers=SIBLING))
    assert (
        await app.patch(patch, json={"admit_rate": 7}, headers={"Origin": SITE})
    ).status_code == 200
    app.cookies.clear()
    # The key in a header: another site's page cannot send it; a program sends no Origin.
    header = {"X-API-Key": key, **EVIL}
    assert (await app.patch(patch, json={"admit_rate": 8}, headers=header)).status_code == 200

    # The shopper's cookies: a hold, its confirm (the fast lane), a cancel.
    [ticket] = await tickets_for(deps, "drop", [reg])
    watch = QueueWatch(deps)
    await watch.refresh("drop")
    clock.advance(1)
    await watch.refresh("drop")
    app.cookies.set("fd_ticket", ticket)
    app.cookies.set("fd_shopper", (await issue_token(deps, "drop", reg)).token)
    hold = "/api/launches/drop/holds"
    _refused(await app.post(hold, json={"store_id": "S1", "sku_id": "K1"}, headers=EVIL))
    held = await reserve(deps, "drop", reg, "S1", "K1", rank=0)
    confirm = f"{hold}/{held.hold_id}/confirm"
    _refused(await app.post(confirm, headers={"Sec-Fetch-Site": "cross-site"}))
    done = await app.post(confirm, headers={"Sec-Fetch-Site": "same-origin"})
    assert done.status_code in (200, 201), done.text
    cancel = f"/api/launches/drop/reservations/{done.json()['reservation']['id']}/cancel"
    _refused(await app.post(cancel, headers=EVIL))
    assert (await app.post(cancel, headers={"Origin": SITE})).status_code == 200
