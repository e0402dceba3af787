"""The pickup desk. Staff of a store see only that store's reservations: anything
else is "not found", so nothing about other stores leaks."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

import msgspec
from asyncpg import Record

from service import errors, events, subjects
from service.admin.exports import safe_cell
from service.admin.models import check_years
from service.auth.apikeys import display_names
from service.deps import Deps
from service.pickup.windows import WINDOW_COLUMNS, WINDOW_END, describe, now_of
from service.stock.codes import format_code, normalize_code

_CARD = f"""
SELECT r.id, r.code, r.status, r.store_id, r.sku_id, k.name AS sku_name, s.name AS store_name,
       g.name AS customer_name, g.public_id, r.created_at, r.collected_at, r.collected_by,
       r.cancelled_at, r.released_at, {WINDOW_COLUMNS}
FROM reservations r
JOIN launches l ON l.id = r.launch_id
JOIN registrations g ON g.id = r.registration_id
JOIN skus k ON k.launch_id = r.launch_id AND k.id = r.sku_id
JOIN stores s ON s.launch_id = r.launch_id AND s.id = r.store_id
WHERE r.launch_id = $1 AND r.store_id = $2
"""

# Collected once, and only while its window is open at $4: [starts, ends).
_COLLECT = f"""
UPDATE reservations r SET status = 'collected', collected_at = $4, collected_by = $5
FROM launches l
WHERE l.id = r.launch_id AND r.launch_id = $1 AND r.store_id = $2 AND r.code = $3
  AND r.status = 'confirmed'
  AND (l.pickup_starts_at IS NULL OR l.pickup_starts_at <= $4)
  AND ({WINDOW_END} IS NULL OR $4 < {WINDOW_END})
RETURNING r.id
"""


class PickupCard(msgspec.Struct, frozen=True, kw_only=True):
    reservation_id: int
    code: str
    code_display: str
    status: str
    store_id: str
    store_name: str
    sku_id: str
    sku_name: str
    customer_name: str | None
    """Check it against the customer's ID."""
    customer_public_id: str
    created_at: datetime
    collected_at: datetime | None
    collected_by: str | None
    """Who handed it over: their key's label, or "staff at <store>"."""
    cancelled_at: datetime | None
    released_at: datetime | None
    """Released as a no-show (its pickup window ended uncollected)."""
    pickup_starts_at: datetime | None
    pickup_ends_at: datetime | None
    """When it can be collected: [starts, ends); None is no bound on that side."""
    pickup_extended: bool
    """An agent extended the end for this reservation."""


class PickupList(msgspec.Struct, frozen=True, kw_only=True):
    store_id: str
    day: date | None
    """The day listed (UTC), or None: everything at the store."""
    expected: int
    collected: int
    outstanding: int
    no_show: int
    reservations: list[PickupCard]


async def _cards(deps: Deps, launch_id: str, rows: list[Record]) -> list[PickupCard]:
    names = await display_names(deps.pool, [r["collected_by"] for r in rows], launch_id)
    return [_card(r, names) for r in rows]


def _card(row: Record, names: dict[str, str]) -> PickupCard:
    r = dict(row)
    return PickupCard(
        reservation_id=r["id"],
        code=r["code"],
        code_display=format_code(r["code"]),
        status=r["status"],
        store_id=r["store_id"],
        store_name=r["store_name"],
        sku_id=r["sku_id"],
        sku_name=r["sku_name"],
        customer_name=r["customer_name"],
        customer_public_id=r["public_id"],
        created_at=r["created_at"],
        collected_at=r["collected_at"],
        collected_by=names.get(r["collected_by"], r["collected_by"]),
        cancelled_at=r["cancelled_at"],
        released_at=r["released_at"],
        pickup_starts_at=r["pickup_starts_at"],
        pickup_ends_at=r["pickup_ends_at"],
        pickup_extended=r["pickup_extended"],
    )


async def lookup(deps: Deps, launch_id: str, store_id: str, typed: str) -> PickupCard:
    """The reservation a code names, at this store only."""
    code = normalize_code(typed)
    row = await deps.pool.fetchrow(_CARD + " AND r.code = $3", launch_id, store_id, code)
    if row is None:
        raise errors.NotFound("No reservation with this code at this store.")
    (card,) = await _cards(deps, launch_id, [row])
    return card


async def collect(
    deps: Deps, launch_id: str, store_id: str, typed: str, *, actor: str
) -> PickupCard:
    """Mark the reservation collected, exactly once, within its pickup window; a second
    desk is told when and by whom, a late one that it was released or when pickup was."""
    code = normalize_code(typed)
    now = now_of(deps)
    async with deps.pool.acquire() as con, con.transaction():
        done = await con.fetchval(_COLLECT, launch_id, store_id, code, now, actor)
        if done is not None:
            await events.record(
                con,
                launch_id=launch_id,
                actor=actor,
                channel="store",
                kind="reservation.collected",
                subject=subjects.reservation(done),
                data={"store": store_id, "code": code},
            )
    card = await lookup(deps, launch_id, store_id, code)
    if done is None:
        raise _refusal(card, now)
    return card


def _refusal(card: PickupCard, now: datetime) -> errors.FairdropError:
    """Why `card` could not be collected at `now`, in words the desk can tell the customer."""
    at = "%Y-%m-%d %H:%M:%S %Z"
    if card.status == "collected":
        return errors.AlreadyCollected(
            f"Collected at {card.collected_at:{at}} by {card.collected_by}.",
            collected_at=card.collected_at.isoformat() if card.collected_at else None,
            collected_by=card.collected_by,
        )
    if card.status == "confirmed":
        window = describe(card.pickup_starts_at, card.pickup_ends_at)
        when = (
            "has not opened yet"
            if card.pickup_starts_at and now < card.pickup_starts_at
            else "has ended"
        )
        return errors.OutsidePickupWindow(
            f"Pickup of this reservation is {window}; it {when}.",
            pickup_starts_at=_iso(card.pickup_starts_at),
            pickup_ends_at=_iso(card.pickup_ends_at),
        )
    if card.status == "no_show":
        return errors.NotCollectable(
            f"This reservation was released as a no-show at {card.released_at:{at}}: its"
            f" pickup window ended {describe(None, card.pickup_ends_at).removeprefix('until ')}"
            " and its unit went back to stock.",
            reservation_status=card.status,
            released_at=_iso(card.released_at),
        )
    return errors.NotCollectable(
        f"This reservation was {card.status}"
        + (f" at {card.cancelled_at:{at}}" if card.cancelled_at else "")
        + "; it cannot be collected.",
        reservation_status=card.status,
    )


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


# A day's list (UTC, [$3, $4)): collected that day, released as no-shows that day, or
# still to collect with a window open that day.
_ON_DAY = f"""
 AND CASE r.status
   WHEN 'collected' THEN r.collected_at >= $3 AND r.collected_at < $4
   WHEN 'no_show' THEN r.released_at >= $3 AND r.released_at < $4
   WHEN 'confirmed' THEN (l.pickup_starts_at IS NULL OR l.pickup_starts_at < $4)
                     AND ({WINDOW_END} IS NULL OR {WINDOW_END} > $3)
   ELSE false END
"""


async def pickup_list(
    deps: Deps, launch_id: str, store_id: str, day: date | None = None
) -> PickupList:
    """The store's pickups with counts: expected = collected + outstanding + no-shows."""
    if day is not None:
        check_years(day, "day", source="query")
    if day is None:
        rows = await deps.pool.fetch(
            _CARD + " AND r.status IN ('confirmed', 'collected', 'no_show') ORDER BY r.id",
            launch_id,
            store_id,
        )
    else:
        start = datetime.combine(day, time(), tzinfo=UTC)
        rows = await deps.pool.fetch(
            _CARD + _ON_DAY + " ORDER BY r.id", launch_id, store_id, start, start + timedelta(1)
        )
    cards = await _cards(deps, launch_id, rows)
    counts = Counter(c.status for c in cards)
    return PickupList(
        store_id=store_id,
        day=day,
        expected=len(cards),
        collected=counts["collected"],
        outstanding=counts["confirmed"],
        no_show=counts["no_show"],
        reservations=cards,
    )


CSV_COLUMNS = (
    "code",
    "customer_name",
    "sku_id",
    "sku_name",
    "status",
    "pickup_ends_at",
    "collected_at",
    "collected_by",
)


def pickup_csv(listing: PickupList) -> str:
    """The list as CSV with a header row. Cells a spreadsheet would run as a formula
    (a name starting with `=`, `+`, `-`, `@`) are quoted with a leading `'`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for card in listing.reservations:
        row = {
            "code": card.code_display,
            "customer_name": card.customer_name or "",
            "sku_id": card.sku_id,
            "sku_name": card.sku_name,
            "status": card.status,
            "pickup_ends_at": _iso(card.pickup_ends_at) or "",
            "collected_at": _iso(card.collected_at) or "",
            "collected_by": card.collected_by or "",
        }
        writer.writerow([safe_cell(row[c]) for c in CSV_COLUMNS])
    return out.getvalue()
