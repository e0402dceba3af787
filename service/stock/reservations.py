"""Reading and cancelling reservations. Postgres first; Redis follows via the outbox."""

from __future__ import annotations

import asyncpg

from service import errors, events, subjects
from service.deps import Deps
from service.infra.db import Conn
from service.stock.codes import normalize_code
from service.stock.models import RESERVATION_COLUMNS, Reservation, reservation_from_row
from service.stock.outbox import apply_now, enqueue


async def for_registration(deps: Deps, launch_id: str, registration_id: int) -> list[Reservation]:
    rows = await deps.pool.fetch(
        f"SELECT {RESERVATION_COLUMNS} FROM reservations"
        " WHERE launch_id = $1 AND registration_id = $2 ORDER BY id",
        launch_id,
        registration_id,
    )
    return [reservation_from_row(r) for r in rows]


async def by_code(
    deps: Deps, launch_id: str, typed: str, store_id: str | None = None
) -> Reservation:
    """The reservation whose code was typed or scanned (forgiving; see `normalize_code`).

    `store_id` set → only that store's reservations are visible (others are 404).
    """
    code = normalize_code(typed)
    row = await deps.pool.fetchrow(
        f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE launch_id = $1 AND code = $2"
        " AND ($3::text IS NULL OR store_id = $3)",
        launch_id,
        code,
        store_id,
    )
    if row is None:
        raise errors.NotFound("No reservation has this code.")
    return reservation_from_row(row)


async def cancel(
    deps: Deps,
    launch_id: str,
    reservation_id: int,
    *,
    registration_id: int | None,
    actor: str,
    channel: str,
    reason: str = "",
) -> Reservation:
    """Cancel a confirmed reservation; its unit returns to stock exactly once.

    `registration_id` set → the shopper may cancel only their own (others are 404).
    """
    async with deps.pool.acquire() as con, con.transaction():
        await con.execute("SELECT pg_advisory_xact_lock_shared($1)", deps.launch_lock(launch_id))
        old = await con.fetchrow(
            "SELECT id, hold_id, registration_id, store_id, sku_id, unit_no, slot, status"
            " FROM reservations WHERE launch_id = $1 AND id = $2 FOR UPDATE",
            launch_id,
            reservation_id,
        )
        if old is None or (
            registration_id is not None and old["registration_id"] != registration_id
        ):
            raise errors.NotFound("No such reservation.")
        if old["status"] != "confirmed":
            raise errors.Conflict(f"The reservation is {old['status']} and cannot be cancelled.")
        row = await con.fetchrow(
            "UPDATE reservations SET status = 'cancelled', released_unit = unit_no,"
            " unit_no = NULL, slot = NULL, cancelled_at = now()"
            f" WHERE id = $1 RETURNING {RESERVATION_COLUMNS}",
            reservation_id,
        )
        await _announce_cancel(con, launch_id, old, actor=actor, channel=channel, reason=reason)
    await apply_now(deps, launch_id)
    return reservation_from_row(row)


async def _announce_cancel(
    con: Conn, launch_id: str, old: asyncpg.Record, *, actor: str, channel: str, reason: str
) -> None:
    """The cancel's audit event, its unit's return to Redis and the customer's e-mail, in
    the cancel's transaction (the outbox applies them once it has committed)."""
    await events.record(
        con,
        launch_id=launch_id,
        actor=actor,
        channel=channel,
        kind="reservation.cancelled",
        subject=subjects.registration(old["registration_id"]),
        data={"reservation": old["id"], "reason": reason},
    )
    await enqueue(
        con,
        launch_id,
        "return_unit",
        {
            "store": old["store_id"],
            "sku": old["sku_id"],
            "unit": old["unit_no"],
            "registration": old["registration_id"],
            "slot": old["slot"],
            "hold": old["hold_id"],
        },
    )
    await enqueue(
        con,
        launch_id,
        "notify.reservation_cancelled",
        {"reservation": old["id"], "registration": old["registration_id"]},
    )
