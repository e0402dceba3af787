"""What a shopper can do through their self-service link: cancel a hold or a
reservation, have the code e-mailed again, add the pickup to a calendar, show the QR.

Every function takes the registration the credential names and refuses (404) what
belongs to anyone else.
"""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import msgspec

from service import errors, events, subjects
from service.admin import launches
from service.customers import calendar, links
from service.customers.selfservice import LIVE, live_holds, names_of
from service.deps import Deps
from service.notify import enqueue_notification
from service.notify.templates import qr_png
from service.stock import holds, reservations
from service.stock.codes import QR_BORDER, format_code, qr_symbol
from service.stock.models import RESERVATION_COLUMNS, Reservation, reservation_from_row

RESEND_WINDOW_MS = 120_000
"""At most one re-sent code per reservation in this window, whatever the channel."""
DEFAULT_PICKUP = timedelta(hours=1)
"""The calendar event's length when the launch sets no end to its pickup window."""


class Resent(msgspec.Struct, frozen=True):
    status: str
    """`queued`: the code is on its way (again)."""
    retry_after_seconds: int
    """When another re-send may be asked for."""


async def own_reservation(
    deps: Deps, launch_id: str, registration_id: int, reservation_id: int
) -> Reservation:
    row = await deps.pool.fetchrow(
        f"SELECT {RESERVATION_COLUMNS} FROM reservations"
        " WHERE launch_id = $1 AND id = $2 AND registration_id = $3",
        launch_id,
        reservation_id,
        registration_id,
    )
    if row is None:
        raise errors.NotFound("No such reservation.")
    return reservation_from_row(row)


async def cancel_reservation(
    deps: Deps, launch_id: str, registration_id: int, reservation_id: int, *, channel: str
) -> Reservation:
    """Cancel before pickup: Postgres first, the unit returns once through the outbox,
    the code stops collecting, and the shopper is e-mailed."""
    return await reservations.cancel(
        deps,
        launch_id,
        reservation_id,
        registration_id=registration_id,
        actor=subjects.registration(registration_id),
        channel=channel,
    )


async def cancel_hold(deps: Deps, launch_id: str, registration_id: int, hold_id: str) -> None:
    """Let a hold go: the script returns its unit exactly once (a second cancel finds
    no hold); the shopper is e-mailed."""
    live = await deps.pool.fetchval(
        "SELECT count(*) FROM reservations WHERE launch_id = $1 AND registration_id = $2"
        " AND status = ANY($3)",
        launch_id,
        registration_id,
        list(LIVE),
    )
    found = [h for h in await live_holds(deps, launch_id, registration_id, live) if h[0] == hold_id]
    if not found:
        raise await holds.gone(deps, launch_id, registration_id, hold_id)
    _, store, sku, _, _ = found[0]
    await holds.release(deps, launch_id, registration_id, hold_id)
    async with deps.pool.acquire() as con:
        await enqueue_notification(
            con,
            launch_id,
            "hold_released",
            {"registration": registration_id, "hold": hold_id, "store": store, "sku": sku},
            dedupe_key=f"hold_released:{launch_id}:{hold_id}",
        )


async def resend_code(
    deps: Deps,
    launch_id: str,
    registration_id: int,
    reservation_id: int,
    *,
    channel: str,
    request_key: str | None = None,
) -> Resent:
    """E-mail the code again: once per `RESEND_WINDOW_MS` per reservation; the same
    request again (same `request_key`) is answered as before and sends nothing."""
    r = await own_reservation(deps, launch_id, registration_id, reservation_id)
    if r.status != "confirmed":
        raise errors.Conflict(f"The reservation is {r.status}; its code no longer collects.")
    now = deps.clock.now_ms()
    window = now // RESEND_WINDOW_MS
    retry = math.ceil(((window + 1) * RESEND_WINDOW_MS - now) / 1000)
    key = f"resend:{launch_id}:{reservation_id}:{window}"
    async with deps.pool.acquire() as con, con.transaction():
        if request_key is not None and await con.fetchval(
            "SELECT 1 FROM outbox WHERE dedupe_key = ANY($1) AND payload->>'request' = $2",
            [key, f"resend:{launch_id}:{reservation_id}:{window - 1}"],
            request_key,
        ):
            return Resent(status="queued", retry_after_seconds=retry)
        queued = await enqueue_notification(
            con,
            launch_id,
            "reservation_confirmed",
            {
                "reservation": reservation_id,
                "registration": registration_id,
                "resend": True,
                "request": request_key,
            },
            dedupe_key=key,
        )
        if queued is None:
            raise errors.TooManyRequests(
                f"The code was sent again a moment ago; ask again in {retry} s.",
                retry_after=retry,
            )
        await events.record(
            con,
            launch_id=launch_id,
            actor=subjects.registration(registration_id),
            channel=channel,
            kind="reservation.code_resent",
            subject=subjects.registration(registration_id),
            data={"reservation": reservation_id},
        )
    return Resent(status="queued", retry_after_seconds=retry)


# What changes a reservation's calendar event after it was booked: each raises SEQUENCE.
_EVENT_CHANGES = [
    "reservation.moved",
    "reservation.pickup_extended",
    "reservation.cancelled",
    "reservation.no_show",
]

_GONE = {"cancelled": "cancelled", "no_show": "released: it was not collected in time"}
"""Statuses whose event is off the calendar, in the shopper's words."""


async def calendar_file(
    deps: Deps, launch_id: str, registration_id: int, reservation_id: int
) -> str:
    """The reservation's pickup window as an iCalendar event: the same event (UID) as
    it changes, and a cancelled one says so, so calendars drop it."""
    r = await own_reservation(deps, launch_id, registration_id, reservation_id)
    launch = await launches.get_launch(deps, launch_id)
    if launch.pickup_starts_at is None:
        raise errors.Conflict("The pickup window is not set yet; try again later.")
    found = await deps.pool.fetchrow(
        "SELECT (SELECT pickup_ends_at FROM reservations WHERE id = $3),"
        " (SELECT count(*) FROM events WHERE subject = $1 AND kind = ANY($2)"
        "  AND data->>'reservation' = $3::bigint::text)",
        subjects.registration(registration_id),
        _EVENT_CHANGES,
        reservation_id,
    )
    assert found is not None  # one row of two scalar subqueries
    own_end, changes = found
    starts = launch.pickup_starts_at
    ends = max(filter(None, [launch.pickup_ends_at, own_end]), default=starts + DEFAULT_PICKUP)
    stores, skus = await names_of(deps, launch_id)
    store, sku = stores.get(r.store_id, r.store_id), skus.get(r.sku_id, r.sku_id)
    token = links.manage_token(deps, launch_id, registration_id)
    host = urlsplit(deps.settings.base_url).hostname or "fairdrop"
    code, url = format_code(r.code), links.manage_url(deps, launch_id, token)
    gone = r.status in _GONE
    return calendar.pickup_event(
        uid=f"reservation-{r.id}-{launch_id}@{host}",
        stamp=datetime.fromtimestamp(deps.clock.now_ms() / 1000, tz=UTC),
        starts=starts,
        ends=ends,
        summary=f"{'Cancelled: ' if gone else ''}Pick up {sku} ({launch.name})",
        location=store,
        description=(
            f"Reservation {code} is {_GONE[r.status]}: its code no longer collects and"
            f" there is nothing to pick up.\nSee it: {url}"
            if gone
            else f"Reservation code: {code}\nShow this code or its QR code at {store}.\n"
            f"See or cancel: {url}"
        ),
        url=url,
        sequence=changes,
        cancelled=gone,
    )


async def qr(
    deps: Deps, launch_id: str, registration_id: int, reservation_id: int, kind: str
) -> bytes:
    """The code's QR code as `png` or `svg`, while it still collects."""
    r = await own_reservation(deps, launch_id, registration_id, reservation_id)
    if r.status != "confirmed":
        raise errors.Conflict(f"The reservation is {r.status}; its code no longer collects.")
    if kind == "png":
        return qr_png(r.code)
    buffer = io.BytesIO()
    qr_symbol(r.code).save(buffer, kind="svg", scale=8, border=QR_BORDER, title=r.code)
    return buffer.getvalue()
