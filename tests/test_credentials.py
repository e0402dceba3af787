"""A credential sent and wrong is refused: a bad `Authorization: Bearer` is a 401, never
served as whoever a cookie names; and a token has exactly one spelling."""

from __future__ import annotations

import binascii

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.auth import signin
from service.auth.apikeys import authenticate
from service.auth.tokens import ShopperClaims, TokenSigner
from service.clock import FakeClock
from service.deps import Deps
from service.errors import PROBLEM_BASE, Unauthorized
from service.infra.settings import Settings
from service.queue.registrations import issue_token
from service.queue.status import QueueWatch
from service.stock import holds
from service.web.app import create_app
from service.web.auth import KEY_COOKIE, SHOPPER_COOKIE, TICKET_COOKIE
from service.web.fastpath import FastLane
from tests.serve import selling_launch, tickets_for

L = "drop"
WRONG_BEARERS = ["Bearer nope.nope", "Bearer ", "Bearer", "bearer    ", "Bearer fd_x_y"]


async def test_a_wrong_bearer_is_refused_even_beside_a_good_cookie(
    deps: Deps, settings: Settings, clock: FakeClock, admin_key: str
) -> None:
    regs = await selling_launch(deps, L, units=3, registrations=1, limit=3)
    shopper = (await issue_token(deps, L, regs[0])).token
    (ticket,) = await tickets_for(deps, L, regs)
    watch = QueueWatch(deps)
    await watch.refresh(L)
    clock.advance(1)
    assert (await watch.refresh(L)).admitted == 1
    hold = await holds.reserve(deps, L, regs[0], "S1", "K1")
    session = signin.session_token(deps, await authenticate(deps.pool, admin_key))
    base = f"/api/launches/{L}"
    routes = [  # (method, path, cookie, its value, body); the fast lane's two come first
        ("GET", f"{base}/queue/status", TICKET_COOKIE, ticket, None),
        ("POST", f"{base}/holds/{hold.hold_id}/confirm", TICKET_COOKIE, ticket, None),
        ("POST", f"{base}/holds", TICKET_COOKIE, ticket, {"store_id": "S1", "sku_id": "K1"}),
        ("GET", f"{base}/me", SHOPPER_COOKIE, shopper, None),
        ("GET", f"{base}/manage", SHOPPER_COOKIE, shopper, None),
        ("POST", f"{base}/queue/checkin", SHOPPER_COOKIE, shopper, None),
        ("GET", "/api/admin/keys", KEY_COOKIE, session, None),
    ]
    app = FastLane(create_app(msgspec.structs.replace(settings, background=False), clock))
    async with AsyncTestClient(app) as client:  # type: ignore[arg-type]
        client_: AsyncTestClient[Litestar] = client  # type: ignore[assignment]
        for method, path, cookie, value, body in routes:
            for wrong in WRONG_BEARERS:
                client_.cookies.clear()
                client_.cookies.set(cookie, value)
                r = await client_.request(method, path, json=body, headers={"Authorization": wrong})
                where = f"{method} {path} with {wrong!r} and a good {cookie}: {r.text[:200]}"
                assert r.status_code == 401, where
                assert r.headers["content-type"].startswith("application/problem+json"), where
                assert r.json()["type"] == PROBLEM_BASE + "unauthorized", where
        assert await deps.pool.fetchval("SELECT count(*) FROM reservations") == 0, "no confirm"
        for method, path, cookie, value, body in routes:
            client_.cookies.clear()
            client_.cookies.set(cookie, value)
            r = await client_.request(method, path, json=body)
            assert r.status_code in (200, 201), f"the cookie alone serves {path}: {r.text[:200]}"


def _spellings(token: str) -> list[str]:
    """Other spellings of `token` that a lenient base64 decoder reads as the same bytes."""
    body, tag = token.split(".")
    tweaked = body[:-1] + chr(ord(body[-1]) ^ 1)  # spare bits set, when there are any
    out = [
        f"{body}=.{tag}",
        f"{body}==.{tag}",
        f"{body}.{tag}=",
        f" {body}.{tag}",
        f"{body[:4]} {body[4:]}.{tag}",
        f"{body[:4]}\n{body[4:]}.{tag}",
        f"{body[:4]}!{body[4:]}.{tag}",
        f"{body}.{tag[:5]}*{tag[5:]}",
        f"{body.replace('-', '+').replace('_', '/')}.{tag}",
    ]
    if _lenient(tweaked) == _lenient(body):
        out.append(f"{tweaked}.{tag}")
    return [s for s in out if s != token]


def _lenient(text: str) -> bytes:
    return binascii.a2b_base64(text.encode().translate(bytes.maketrans(b"-_", b"+/")) + b"==")


@pytest.mark.parametrize("registration_id", [1, 7, 300, 2**40])
def test_a_token_has_exactly_one_spelling(registration_id: int) -> None:
    signer = TokenSigner("s")
    # Payload lengths vary with the id, so every base64 remainder (and spare bits) is met.
    for expires in (1, 2**20, 2**40):
        claims = ShopperClaims("drop", registration_id, expires + 10**12)
        token = signer.sign(claims)
        assert signer.verify(token, launch_id="drop", now_ms=0) == claims
        for other in _spellings(token):
            with pytest.raises(Unauthorized):
                signer.verify(other, launch_id="drop", now_ms=0)


def test_spare_bits_are_a_second_spelling_and_refused() -> None:
    signer = TokenSigner("s")
    token = next(
        t
        for t in (signer.sign(ShopperClaims("drop", n, 10**13)) for n in range(1, 999))
        if len(t.split(".")[0]) % 4 == 2  # four spare bits in the last character
    )
    body, tag = token.split(".")
    tweaked = (
        body[:-1]
        + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(body[-1]) + 1
        ]
    )
    assert _lenient(tweaked) == _lenient(body), "a lenient decoder reads both as one payload"
    with pytest.raises(Unauthorized):
        signer.verify(f"{tweaked}.{tag}", launch_id="drop", now_ms=0)
