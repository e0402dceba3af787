"""Pickup windows and the no-show release.

A reservation is collected within its launch's pickup window. An agent may extend the
end for one reservation, never shorten it: the end in force is the later of the
launch's and the reservation's own (`WINDOW_END`). No end means no deadline. Times
come from the one clock (`deps.clock`), so tests move them.

When a window ends with the reservation still uncollected, `release_no_shows` releases
it: Postgres first (status `no_show`, an event row, a notice in the outbox), then the
unit returns to Redis through the outbox, applied once per row. A unit that comes back
while the launch is selling is free stock again, so admission moves on to the next in
the queue (the admit script caps admission by the free units).
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from service.deps import Deps
from service.notify.sender import TOPIC_PREFIX
from service.stock.outbox import apply_now

# SQL over `reservations r JOIN launches l`.
WINDOW_END = "GREATEST(l.pickup_ends_at, r.pickup_ends_at)"
WINDOW_COLUMNS = (
    f"l.pickup_starts_at, {WINDOW_END} AS pickup_ends_at,"
    " coalesce(r.pickup_ends_at > l.pickup_ends_at, false) AS pickup_extended"
)
NO_SHOW_KIND = "reservation_no_show"


class PickupWindow(msgspec.Struct, frozen=True, kw_only=True):
    """When a reservation can be collected; None: no bound on that side."""

    reservation_id: int
    starts_at: datetime | None
    ends_at: datetime | None
    extended: bool
    """An agent moved the end past the launch's."""


def now_of(deps: Deps) -> datetime:
    return datetime.fromtimestamp(deps.clock.now_ms() / 1000, tz=UTC)


def describe(starts_at: datetime | None, ends_at: datetime | None) -> str:
    """The window in words, for the desk and the agent."""
    fmt = "%Y-%m-%d %H:%M %Z"
    if starts_at and ends_at:
        return f"from {starts_at:{fmt}} until {ends_at:{fmt}}"
    if starts_at:
        return f"from {starts_at:{fmt}}"
    if ends_at:
        return f"until {ends_at:{fmt}}"
    return "at any time"


_DUE_LAUNCHES = (
    "SELECT id FROM launches WHERE pickup_ends_at <= $1 AND ($2::text IS NULL OR id = $2)"
    " ORDER BY id"
)

# One statement per batch: lock the due rows (skipping those a desk or an agent holds
# right now: they are looked at again next time), release them, and write their event,
# stock-return and notice rows. A collect racing this waits for the row and then finds
# it no longer confirmed; a second release skips it or finds it released.
_RELEASE = f"""
WITH due AS (
    SELECT r.id, r.unit_no, r.slot, {WINDOW_END} AS ends_at
    FROM reservations r JOIN launches l ON l.id = r.launch_id
    WHERE r.launch_id = $1 AND r.status = 'confirmed' AND {WINDOW_END} <= $2
    ORDER BY r.id LIMIT $3
    FOR UPDATE OF r SKIP LOCKED
), rel AS (
    UPDATE reservations r SET status = 'no_show', released_unit = due.unit_no,
        unit_no = NULL, slot = NULL, released_at = $2
    FROM due WHERE r.id = due.id
    RETURNING r.id, r.launch_id, r.hold_id, r.registration_id, r.store_id, r.sku_id, r.code,
        due.unit_no, due.slot, due.ends_at
), e AS (
    INSERT INTO events (launch_id, actor, channel, kind, subject, data)
    SELECT launch_id, 'system', 'system', 'reservation.no_show',
           'registration:' || registration_id,
           jsonb_build_object('reservation', id, 'store', store_id, 'sku', sku_id,
                              'code', code, 'pickup_ended_at', ends_at)
    FROM rel
), s AS (
    INSERT INTO outbox (launch_id, topic, payload)
    SELECT launch_id, 'return_unit',
           jsonb_build_object('store', store_id, 'sku', sku_id, 'unit', unit_no,
                              'registration', registration_id, 'slot', slot, 'hold', hold_id)
    FROM rel ORDER BY id
), n AS (
    INSERT INTO outbox (launch_id, topic, payload, dedupe_key)
    SELECT launch_id, $4, jsonb_build_object('reservation', id, 'registration', registration_id),
           'no-show:' || id
    FROM rel ON CONFLICT (dedupe_key) DO NOTHING
)
SELECT count(*) FROM rel
"""


async def release_no_shows(deps: Deps, launch_id: str | None = None, *, batch: int = 500) -> int:
    """Release every reservation whose pickup window has ended uncollected (all
    launches, or one). Returns how many this call released.

    Safe to run in many processes at once: each row is released by one of them.
    """
    now = now_of(deps)
    released = 0
    for row in await deps.pool.fetch(_DUE_LAUNCHES, now, launch_id):
        lid = row["id"]
        while True:
            async with deps.pool.acquire() as con, con.transaction():
                # Shared: no rebuild reads the launch half-way through this.
                await con.execute("SELECT pg_advisory_xact_lock_shared($1)", deps.launch_lock(lid))
                n: int = await con.fetchval(_RELEASE, lid, now, batch, TOPIC_PREFIX + NO_SHOW_KIND)
            released += n
            if n:
                await apply_now(deps, lid)
            if n < batch:
                break
    return released
