"""Self-service over HTTP: one JSON view of a registration through the signed link or
the queue ticket; cancel a hold or a reservation (stock returns once, however many
cancels race); re-send the code; the pickup window as a calendar file; the QR code.

The app runs on the test's fake clock, so hold times and link expiry are exact.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from service import errors
from service.auth.tokens import ShopperClaims
from service.clock import FakeClock
from service.customers import actions, agent_actions, links
from service.deps import Deps
from service.infra.settings import Settings
from service.notify import send_pending
from service.notify.templates import qr_png
from service.pickup import desk
from service.queue.signup import verification_link
from service.queue.status import QueueWatch
from service.stock.codes import format_code
from service.stock.confirm import confirm
from service.stock.hold_log import drain_events
from service.stock.holds import reserve
from service.stock.models import Reservation
from service.web.app import create_app
from tests.mail import smtp_server
from tests.serve import assert_consistent, selling_launch, tickets_for

L = "drop"
PROBLEM = "application/problem+json"
STORE = "Store One, Main St; Level 2"
PICKUP = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
Client = AsyncTestClient  # type: ignore[type-arg]


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[Client]:
    """The app on the test's fake clock (no background sweeper)."""
    application = create_app(msgspec.structs.replace(settings, background=False), clock=clock)
    async with AsyncTestClient(application) as c:
        yield c


class Shop(msgspec.Struct):
    regs: list[int]
    ticket: str
    reservation: Reservation
    hold_id: str


async def shop(deps: Deps, clock: FakeClock) -> Shop:
    """Ada (regs[0]) checks in, is admitted, confirms one unit at S1 and holds one at S2;
    Bob (regs[1]) confirms one at S1."""
    regs = await selling_launch(deps, L, stores=("S1", "S2"), units=2, registrations=3, limit=2)
    await deps.pool.execute("UPDATE stores SET name = $1 WHERE id = 'S1'", STORE)
    await deps.pool.execute("UPDATE skus SET name = 'Phone 17' WHERE id = 'K1'")
    await deps.pool.execute(
        "UPDATE launches SET pickup_starts_at = $2, pickup_ends_at = $3 WHERE id = $1",
        L,
        PICKUP,
        PICKUP + timedelta(hours=8),
    )
    [ticket] = await tickets_for(deps, L, regs[:1])
    watch = QueueWatch(deps)
    await watch.refresh(L)
    clock.advance(1)
    assert (await watch.refresh(L)).admitted == 1
    first = await reserve(deps, L, regs[0], "S1", "K1", rank=0)
    reservation = await confirm(deps, L, regs[0], first.hold_id, channel="app")
    second = await reserve(deps, L, regs[0], "S2", "K1")
    bobs = await reserve(deps, L, regs[1], "S1", "K1")
    await confirm(deps, L, regs[1], bobs.hold_id)
    await drain_events(deps, L)
    return Shop(regs=regs, ticket=ticket, reservation=reservation, hold_id=second.hold_id)


def link(deps: Deps, registration: int, launch_id: str = L) -> dict[str, str]:
    return {"token": links.manage_token(deps, launch_id, registration)}


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


def unfold(text: str) -> list[str]:
    """RFC 5545 §3.1: CRLF followed by one space or tab continues the line."""
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    return text.replace("\r\n ", "").replace("\r\n\t", "").split("\r\n")[:-1]


def unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\":
            nxt = value[i + 1]
            out.append("\n" if nxt in "nN" else nxt)
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


async def test_the_pickup_window_as_a_calendar_event(
    deps: Deps, clock: FakeClock, app: Client
) -> None:
    s = await shop(deps, clock)
    path = f"/api/launches/{L}/manage/reservations/{s.reservation.id}/calendar.ics"

    r = await app.get(path, params=link(deps, s.regs[0]))

    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/calendar")
    raw = r.content
    assert all(len(line) <= 75 for line in raw.split(b"\r\n")), "folded at 75 octets"
    lines = unfold(raw.decode())
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
    props = dict(line.split(":", 1) for line in lines)
    assert props["VERSION"] == "2.0" and "PRODID" in props
    assert lines.count("BEGIN:VEVENT") == 1
    assert props["DTSTART"] == "20270201T090000Z" and props["DTEND"] == "20270201T170000Z"
    assert props["LOCATION"] == "Store One\\, Main St\\; Level 2"
    assert unescape(props["LOCATION"]) == STORE
    description = unescape(props["DESCRIPTION"])
    assert f"Reservation code: {format_code(s.reservation.code)}\n" in description
    assert props["UID"].startswith(f"reservation-{s.reservation.id}-{L}@")
    assert props["STATUS"] == "CONFIRMED" and props["SUMMARY"] == "Pick up Phone 17 (Drop)"

    await deps.pool.execute("UPDATE launches SET pickup_starts_at = NULL WHERE id = $1", L)
    unset = await app.get(path, params=link(deps, s.regs[0]))
    assert unset.status_code == 409 and unset.headers["content-type"] == PROBLEM


async def test_a_changed_or_cancelled_pickup_updates_the_same_calendar_event(
    deps: Deps, clock: FakeClock, app: Client
) -> None:
    """A calendar replaces an event it holds when the file says the same UID with a
    higher SEQUENCE: a move, a later end and a cancel each raise it, and a cancelled
    one says STATUS:CANCELLED, so the calendar drops the pickup."""
    s = await shop(deps, clock)
    path = f"/api/launches/{L}/manage/reservations/{s.reservation.id}/calendar.ics"

    async def event() -> dict[str, str]:
        r = await app.get(path, params=link(deps, s.regs[0]))
        assert r.status_code == 200, r.text
        lines = unfold(r.content.decode())
        return dict(line.split(":", 1) for line in lines if not line.startswith(("BEGIN", "END")))

    booked = await event()
    staff = {"actor": "agent", "channel": "phone", "reason": "asked"}
    await agent_actions.move(deps, L, s.reservation.id, "S2", **staff)
    moved = await event()
    later = PICKUP + timedelta(days=2)
    await agent_actions.extend_pickup(deps, L, s.reservation.id, later, **staff)
    extended = await event()
    await actions.cancel_reservation(deps, L, s.regs[0], s.reservation.id, channel="web")
    cancelled = await event()

    assert booked["UID"] == moved["UID"] == extended["UID"] == cancelled["UID"]
    sequences = [int(e["SEQUENCE"]) for e in (booked, moved, extended, cancelled)]
    assert sequences == sorted(set(sequences)), f"each change raises SEQUENCE: {sequences}"
    assert moved["LOCATION"] == "S2" and extended["DTEND"] == "20270203T090000Z"
    assert [e["STATUS"] for e in (booked, moved, extended)] == ["CONFIRMED"] * 3
    assert cancelled["STATUS"] == "CANCELLED"
    assert cancelled["SUMMARY"].startswith("Cancelled: ")
    assert "no longer collects" in unescape(cancelled["DESCRIPTION"])


async def test_the_code_as_qr_png_and_svg(deps: Deps, clock: FakeClock, app: Client) -> None:
    s = await shop(deps, clock)
    base = f"/api/launches/{L}/manage/reservations/{s.reservation.id}"

    png = await app.get(f"{base}/qr.png", params=link(deps, s.regs[0]))
    svg = await app.get(f"{base}/qr.svg", headers={"Authorization": f"Bearer {s.ticket}"})

    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content == qr_png(s.reservation.code)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in svg.content and s.reservation.code.encode() in svg.content
