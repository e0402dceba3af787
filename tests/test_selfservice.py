"""Self-service over HTTP: one JSON view of a registration through the signed link or
the queue ticket; cancel a hold or a reservation (stock returns once, however many
cancels race); re-send the code. The calendar file and the QR code: test_selfservice_calendar.py.

The app runs on the test's fake clock, so hold times and link expiry are exact.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import msgspec
import pytest

from service import errors
from service.auth.tokens import ShopperClaims
from service.clock import FakeClock
from service.customers import actions, links
from service.deps import Deps
from service.infra.settings import Settings
from service.notify import send_pending
from service.pickup import desk
from service.queue.signup import verification_link
from service.stock.codes import format_code
from service.stock.holds import reserve
from service.stock.models import Reservation
from tests.mail import smtp_server
from tests.selfservice_kit import (
    PROBLEM,
    STORE,
    Client,
    L,
    app_on,
    link,
    shop,
)
from tests.serve import assert_consistent, selling_launch


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[Client]:
    async with app_on(settings, clock) as client:
        yield client


async def test_one_view_of_everything_about_a_registration(
    deps: Deps, clock: FakeClock, app: Client
) -> None:
    s = await shop(deps, clock)
    clock.advance(100)

    r = await app.get(f"/api/launches/{L}/manage", params=link(deps, s.regs[0]))

    assert r.status_code == 200, r.text
    view = r.json()
    assert view["launch"]["id"] == L
    assert view["registration"]["id"] == s.regs[0]
    assert view["registration"]["email"] == "shopper0@example.com"
    assert view["draw"]["status"] == "no_draw"
    # Her turn ended when the second of her two came through a staff channel.
    assert view["queue"]["state"] == "done" and view["queue"]["rank"] == 0
    [hold] = view["holds"]
    assert hold["hold_id"] == s.hold_id and hold["store_id"] == "S2"
    assert hold["seconds_left"] == 200, "300 s hold, 100 s later"
    [res] = view["reservations"]
    assert res["code_display"] == format_code(s.reservation.code)
    assert res["store"] == STORE and res["sku"] == "Phone 17" and res["status"] == "confirmed"
    assert res["pickup"]["starts_at"].startswith("2027-02-01T09:00:00")
    assert res["cancellable"] is True
    assert set(res["links"]) == {"calendar", "qr_png", "qr_svg", "cancel", "resend"}
    history = [(h["what"], h["by"], h["channel"]) for h in view["history"]]
    assert ("Registered by the organiser", "the organiser", "admin") in history
    assert (
        f"Reservation {format_code(s.reservation.code)} confirmed at {STORE}",
        "you",
        "app",
    ) in history
    assert any(w == "Held Phone 17 at S2" for w, _, _ in history)
    assert all("shopper1" not in str(h) for h in view["history"])

    # The queue ticket (bearer) and the shopper token see the same registration.
    by_ticket = await app.get(
        f"/api/launches/{L}/manage", headers={"Authorization": f"Bearer {s.ticket}"}
    )
    assert by_ticket.status_code == 200
    assert by_ticket.json()["registration"] == view["registration"]

    # Cancelled: only what still works is linked (the calendar file, which drops it).
    await actions.cancel_reservation(deps, L, s.regs[0], s.reservation.id, channel="web")
    after = await app.get(f"/api/launches/{L}/manage", params=link(deps, s.regs[0]))
    [gone] = after.json()["reservations"]
    assert gone["status"] == "cancelled" and gone["cancellable"] is False
    assert set(gone["links"]) == {"calendar"}
    for name, path in gone["links"].items():
        assert (await app.get(path, params=link(deps, s.regs[0]))).status_code == 200, name


def _forge(token: str, registration: int) -> str:
    """A's link with B's registration id in its payload, A's MAC kept."""
    body, mac = token.split(".")
    claims = msgspec.msgpack.decode(
        base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)), type=ShopperClaims
    )
    forged = msgspec.structs.replace(claims, registration_id=registration)
    payload = base64.urlsafe_b64encode(msgspec.msgpack.encode(forged)).rstrip(b"=").decode()
    return f"{payload}.{mac}"


async def test_a_link_for_one_registration_never_reaches_another(
    deps: Deps, clock: FakeClock, app: Client
) -> None:
    s = await shop(deps, clock)
    ada, bob = s.regs[0], s.regs[1]
    bobs = await deps.pool.fetchval("SELECT id FROM reservations WHERE registration_id = $1", bob)
    base = f"/api/launches/{L}/manage"

    for method, path in [
        ("post", f"{base}/reservations/{bobs}/cancel"),
        ("post", f"{base}/reservations/{bobs}/resend"),
        ("get", f"{base}/reservations/{bobs}/calendar.ics"),
        ("get", f"{base}/reservations/{bobs}/qr.png"),
        ("get", f"{base}/reservations/{bobs}/qr.svg"),
    ]:
        r = await getattr(app, method)(path, params=link(deps, ada))
        assert r.status_code == 404, (path, r.text)
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["type"].endswith("/not-found")
    bob_hold = await reserve(deps, L, bob, "S2", "K1")
    r = await app.post(f"{base}/holds/{bob_hold.hold_id}/cancel", params=link(deps, ada))
    assert r.status_code == 404 and r.json()["type"].endswith("/hold-not-found")

    ada_token = link(deps, ada)["token"]
    expired = deps.signer.sign(ShopperClaims(L, ada, clock.now_ms() - 1, links.KIND))
    verify_token = verification_link(deps, L, ada).split("token=")[1]
    await selling_launch(deps, "other", registrations=1)
    refused = {
        "forged": _forge(ada_token, bob),
        "expired": expired,
        "another launch": link(deps, ada, "other")["token"],
        "a verification link": verify_token,
        "garbage": "not-a-token",
    }
    for why, token in refused.items():
        r = await app.get(base, params={"token": token})
        assert r.status_code == 401, (why, r.text)
        assert r.headers["content-type"] == PROBLEM, why
        assert r.json()["type"].endswith("/unauthorized"), why
    assert (await app.get(base)).status_code == 401
    app.cookies.set("fd_ticket", s.ticket)
    assert (await app.get(base)).json()["registration"]["id"] == ada, "the ticket's cookie"
    for why, token in refused.items():
        # A bad link is refused even though the cookie would do.
        assert (await app.get(base, params={"token": token})).status_code == 401, why
    app.cookies.clear()
    assert (await app.get(base, params={"token": ada_token})).json()["registration"]["id"] == ada
    assert (
        await deps.pool.fetchval("SELECT count(*) FROM reservations WHERE status = 'cancelled'")
    ) == 0


async def test_two_cancels_at_once_return_the_unit_once_and_the_code_stops_collecting(
    deps: Deps, clock: FakeClock, app: Client
) -> None:
    s = await shop(deps, clock)
    path = f"/api/launches/{L}/manage/reservations/{s.reservation.id}/cancel"

    answers = await asyncio.gather(
        *(app.post(path, params=link(deps, s.regs[0])) for _ in range(4))
    )

    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409]
    assert all(a.json()["type"].endswith("/conflict") for a in answers if a.status_code == 409)
    returns = await deps.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE topic = 'return_unit' AND payload->>'hold' = $1",
        s.reservation.hold_id,
    )
    assert returns == 1
    counts = await assert_consistent(deps, L)
    assert counts["S1:K1"] == (2, 1, 0, 1), "Ada's unit is back; Bob's stays confirmed"
    with pytest.raises(errors.NotCollectable):
        await desk.collect(deps, L, "S1", s.reservation.code, actor="staff")
    r = await app.get(
        f"/api/launches/{L}/manage/reservations/{s.reservation.id}/qr.png",
        params=link(deps, s.regs[0]),
    )
    assert r.status_code == 409, "a cancelled code has no QR code"

    with smtp_server(deps) as inbox:
        assert await send_pending(deps) >= 1
    code = format_code(s.reservation.code)
    cancelled = [m for m in inbox.messages if str(m["Subject"]).endswith("is cancelled")]
    assert [str(m["Subject"]) for m in cancelled] == [f"Your reservation {code} is cancelled"]
    view = (await app.get(f"/api/launches/{L}/manage", params=link(deps, s.regs[0]))).json()
    assert any(h["what"] == f"Reservation {code} cancelled" for h in view["history"])
    assert view["reservations"][0]["cancellable"] is False


async def test_two_hold_cancels_at_once_return_the_unit_once(
    deps: Deps, clock: FakeClock, app: Client
) -> None:
    s = await shop(deps, clock)
    path = f"/api/launches/{L}/manage/holds/{s.hold_id}/cancel"

    answers = await asyncio.gather(
        *(app.post(path, params=link(deps, s.regs[0])) for _ in range(4))
    )

    assert sorted(a.status_code for a in answers) == [204, 410, 410, 410]
    assert all(a.json()["type"].endswith("/hold-expired") for a in answers if a.content)
    counts = await assert_consistent(deps, L)
    assert counts["S2:K1"] == (2, 2, 0, 0), "the held unit is free again, once"
    rows = await deps.pool.fetch("SELECT payload FROM outbox WHERE topic = 'notify.hold_released'")
    assert [r["payload"]["hold"] for r in rows] == [s.hold_id]
    with smtp_server(deps) as inbox:
        await send_pending(deps)
    [mail] = [m for m in inbox.messages if "let go" in str(m["Subject"])]
    assert str(mail["Subject"]) == "You let go of your hold on Phone 17"
    body = mail.get_body(("plain",))
    assert body is not None and "Phone 17 at S2" in body.get_content()


async def test_service_level_cancels_race_over_separate_connections(
    deps: Deps, clock: FakeClock
) -> None:
    s = await shop(deps, clock)
    outcomes = await asyncio.gather(
        *(
            actions.cancel_reservation(deps, L, s.regs[0], s.reservation.id, channel="web")
            for _ in range(6)
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(o, Reservation) for o in outcomes) == 1
    assert all(isinstance(o, errors.Conflict) for o in outcomes if not isinstance(o, Reservation))
    await assert_consistent(deps, L)


async def test_the_code_is_resent_once_per_window_and_once_per_request(
    deps: Deps, clock: FakeClock, app: Client
) -> None:
    s = await shop(deps, clock)
    path = f"/api/launches/{L}/manage/reservations/{s.reservation.id}/resend"
    params = link(deps, s.regs[0])
    once = {"Idempotency-Key": "req-1"}

    first = await app.post(path, params=params, headers=once)
    retried = await app.post(path, params=params, headers=once)
    other = await app.post(path, params=params, headers={"Idempotency-Key": "req-2"})
    bare = await app.post(path, params=params)

    assert first.status_code == 202 and first.json()["status"] == "queued"
    assert retried.status_code == 202, "the same request again is answered the same"
    assert other.status_code == 429 and bare.status_code == 429
    assert other.headers["content-type"] == PROBLEM
    assert int(other.headers["retry-after"]) == first.json()["retry_after_seconds"] > 0
    clock.advance(first.json()["retry_after_seconds"])
    assert (await app.post(path, params=params)).status_code == 202

    resends = "SELECT count(*) FROM outbox WHERE dedupe_key LIKE 'resend:%'"
    assert await deps.pool.fetchval(resends) == 2
    with smtp_server(deps) as inbox:
        await send_pending(deps)
    code = format_code(s.reservation.code)
    assert [str(m["Subject"]) for m in inbox.messages].count(
        f"Your reservation {code} for Drop"
    ) == 3, "the confirmation, then two re-sends"
    await actions.cancel_reservation(deps, L, s.regs[0], s.reservation.id, channel="web")
    clock.advance(600)
    gone = await app.post(path, params=params)
    assert gone.status_code == 409, "a cancelled code is not sent again"
