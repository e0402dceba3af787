"""Self-service: the pickup window as a calendar file (RFC 5545), and the code as a QR."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from service.clock import FakeClock
from service.customers import actions, agent_actions
from service.deps import Deps
from service.infra.settings import Settings
from service.notify.templates import qr_png
from service.stock.codes import format_code
from tests.selfservice_kit import (
    PICKUP,
    PROBLEM,
    STORE,
    Client,
    L,
    app_on,
    link,
    shop,
    unescape,
    unfold,
)


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[Client]:
    async with app_on(settings, clock) as client:
        yield client


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
