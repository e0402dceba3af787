"""Signing in to the staff pages: the cookie is a session naming the key (never the key),
and a sign-in link works once, within its hour, while its key is not revoked."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from service.auth import signin
from service.auth.apikeys import authenticate, create_key
from service.auth.tokens import ShopperClaims
from service.clock import FakeClock
from service.deps import Deps
from service.web.app import create_app
from tests.serve import selling_launch

Client = AsyncTestClient  # type: ignore[type-arg]


@pytest.fixture
async def pages(deps: Deps, clock: FakeClock) -> AsyncIterator[Client]:
    """The app on the test's fake clock, so sessions and links can run out."""
    app = create_app(msgspec.structs.replace(deps.settings, background=False), clock)
    async with AsyncTestClient(app) as c:
        yield c


def _cookie(reply: object) -> str:
    header = str(reply.headers["set-cookie"])  # type: ignore[attr-defined]
    found = re.match(r"fd_key=([^;]*)", header)
    assert found, header
    lowered = header.lower()
    assert "httponly" in lowered and "samesite=strict" in lowered and "path=/" in lowered
    return found.group(1).strip('"')


async def test_a_link_signs_in_once(deps: Deps, pages: Client) -> None:
    await selling_launch(deps, units=1, registrations=1)
    key = await create_key(deps.pool, "staff", store_id="S1", label="Desk 1")
    token = await signin.create_link(deps, key)
    assert key.split("_", 2)[2] not in token

    # Opening the link only asks: a previewer that fetches it uses nothing up.
    for _ in range(2):
        shown = await pages.get("/staff/login", params={"token": token})
        assert shown.status_code == 200 and "store staff · S1" in shown.text
        assert "set-cookie" not in shown.headers
        assert 'action="/staff/login/link"' in shown.text

    used = await pages.post("/staff/login/link", data={"token": token}, follow_redirects=False)
    assert used.status_code == 303 and used.headers["location"] == "/desk"
    session = _cookie(used)
    assert key.split("_", 2)[2] not in session, "the cookie never carries the key's secret"
    assert (await pages.get("/desk/drop")).status_code == 200
    assert (await pages.get("/api/staff/launches/drop/pickups")).status_code == 200

    pages.cookies.clear()
    again = await pages.post("/staff/login/link", data={"token": token}, follow_redirects=False)
    assert again.status_code == 401 and "used already" in again.text
    assert "set-cookie" not in again.headers
    reopened = await pages.get("/staff/login", params={"token": token})
    assert reopened.status_code == 401 and "used already" in reopened.text
    assert 'name="key"' in reopened.text, "the key form is offered instead"
    assert "aria-invalid" not in reopened.text, "no key was typed, so none is marked wrong"
    wrong = await pages.post("/staff/login", data={"key": "fd_x_y"})
    assert wrong.status_code == 401 and 'aria-invalid="true"' in wrong.text


async def test_racing_redeems_sign_in_once(deps: Deps) -> None:
    key = await create_key(deps.pool, "agent")
    token = await signin.create_link(deps, key)
    outcomes = await asyncio.gather(
        *(signin.redeem_link(deps, token) for _ in range(8)), return_exceptions=True
    )
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 1, outcomes


async def test_a_link_expires_and_dies_with_its_key(
    deps: Deps, clock: FakeClock, pages: Client
) -> None:
    key = await create_key(deps.pool, "operator")
    late = await signin.create_link(deps, key)
    clock.advance(signin.LINK_SECONDS)
    refused = await pages.post("/staff/login/link", data={"token": late}, follow_redirects=False)
    assert refused.status_code == 401 and "expired" in refused.text

    revoked = await signin.create_link(deps, key)
    await deps.pool.execute("UPDATE api_keys SET revoked_at = now()")
    refused = await pages.post("/staff/login/link", data={"token": revoked})
    assert refused.status_code == 401 and "revoked" in refused.text

    made_up = await pages.get("/staff/login", params={"token": "x" * 43})
    assert made_up.status_code == 401 and "not valid" in made_up.text


async def test_the_session_ends_and_dies_with_its_key(
    deps: Deps, clock: FakeClock, pages: Client
) -> None:
    key = await create_key(deps.pool, "operator")
    signed_in = await pages.post("/staff/login", data={"key": key}, follow_redirects=False)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/ops"
    session = _cookie(signed_in)
    assert key not in session and key.split("_", 2)[2] not in session
    assert (await pages.get("/api/admin/launches")).status_code == 200

    clock.advance(signin.SESSION_SECONDS)
    assert (await pages.get("/api/admin/launches")).status_code == 401
    away = await pages.get("/ops", follow_redirects=False)
    assert away.status_code == 303 and away.headers["location"].startswith("/staff/login")

    pages.cookies.set("fd_key", signin.session_token(deps, await authenticate(deps.pool, key)))
    assert (await pages.get("/api/admin/launches")).status_code == 200
    await deps.pool.execute("UPDATE api_keys SET revoked_at = now()")
    assert (await pages.get("/api/admin/launches")).status_code == 401

    # Neither a raw key nor another sort of token passes for a session.
    shopper = deps.signer.sign(ShopperClaims("drop", 1, deps.clock.now_ms() + 60_000))
    for forged in (key, shopper):
        pages.cookies.set("fd_key", forged)
        assert (await pages.get("/api/admin/launches")).status_code == 401
