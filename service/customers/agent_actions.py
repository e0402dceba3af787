"""What an agent does for a customer on the phone: book, move a reservation to another
store, extend its pickup window, resend its code, note something down. Each is an event
with the agent's key, the channel and a reason, so it shows on the customer's timeline.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import asyncpg

from service import errors, events, subjects
from service.customers.story import TimelineEntry
from service.deps import Deps
from service.infra.db import Conn
from service.infra.keys import LaunchKeys
from service.notify.sender import enqueue_notification
from service.pickup.windows import PickupWindow, describe, now_of
from service.stock import confirm, holds
from service.stock.models import RESERVATION_COLUMNS, Reservation, reservation_from_row
from service.stock.outbox import apply_now, enqueue
from service.stock.rebuild import ensure_loaded
from service.store import stock as store


async def _locked(con: Conn, launch_id: str, reservation_id: int) -> asyncpg.Record:
    row = await con.fetchrow(
        "SELECT r.id, r.hold_id, r.registration_id, r.store_id, r.sku_id, r.unit_no, r.status,"
        " r.pickup_ends_at AS own_end, l.pickup_starts_at, l.pickup_ends_at AS launch_end"
        " FROM reservations r JOIN launches l ON l.id = r.launch_id"
        " WHERE r.launch_id = $1 AND r.id = $2 FOR UPDATE OF r",
        launch_id,
        reservation_id,
    )
    if row is None:
        raise errors.NotFound("No such reservation.")
    return row


def _must_be_confirmed(row: asyncpg.Record, doing: str) -> None:
    if row["status"] != "confirmed":
        raise errors.Conflict(f"The reservation is {row['status']}; it cannot be {doing}.")


async def _record(
    con: Conn,
    launch_id: str,
    row: asyncpg.Record,
    kind: str,
    *,
    actor: str,
    channel: str,
    **data: Any,
) -> None:
    await events.record(
        con,
        launch_id=launch_id,
        actor=actor,
        channel=channel,
        kind=kind,
        subject=subjects.registration(row["registration_id"]),
        data={"reservation": row["id"], **data},
    )


# Which refusal of the move's UPDATE means what for the unit the move took in Redis.
_REFUSED: dict[type[Exception], store.AbortWhy] = {
    asyncpg.UniqueViolationError: "unit-taken",  # Redis thought it free; Postgres has it
    asyncpg.ForeignKeyViolationError: "no-such-unit",
}


async def move(
    deps: Deps,
    launch_id: str,
    reservation_id: int,
    to_store: str,
    *,
    actor: str,
    channel: str,
    reason: str,
) -> Reservation:
    """Move a confirmed reservation to another store, if that store has a unit of its SKU.

    All or nothing. Redis takes a free unit there first (`move_begin`, so no shopper can
    hold it meanwhile); Postgres then moves the reservation onto that unit, where the
    one-live-reservation-per-unit index refuses any unit already sold; the old unit
    returns to stock through the outbox (`move_unit`). If Postgres does not commit, the
    taken unit goes back and the reservation stays where it was.
    """
    # Load now: a rebuild waits for the lock this holds below.
    await ensure_loaded(deps, launch_id)
    keys = deps.keys(launch_id)
    new_hold = holds.new_hold_id()
    taken = False
    async with deps.pool.acquire() as con:
        tx = con.transaction()
        await tx.start()
        try:
            # Shared with cancels and releases; a rebuild cannot run half-way through this.
            await con.execute(
                "SELECT pg_advisory_xact_lock_shared($1)", deps.launch_lock(launch_id)
            )
            old = await _locked(con, launch_id, reservation_id)
            _must_be_confirmed(old, "moved")
            if old["store_id"] == to_store:
                raise errors.Conflict(f"The reservation is at {to_store} already.")
            unit_no = await _take_unit(deps, keys, old, to_store, new_hold)
            taken = True
            row = await _move_row(
                con, launch_id, old, to_store, unit_no, new_hold, (actor, channel, reason)
            )
        except BaseException as exc:
            refused = await _undo_move(deps, tx, keys, new_hold if taken else None, exc)
            if refused is not None:
                raise errors.Conflict(
                    f"Stock at {to_store} was not what Redis said ({refused}); the"
                    " reservation stays where it was. Try again."
                ) from exc
            raise
        # If the commit's outcome is unknown, the taken unit stays *confirming* and the
        # reconciler settles it by asking Postgres whether the move is there.
        await tx.commit()
    await apply_now(deps, launch_id)
    return reservation_from_row(row)


async def _move_row(
    con: Conn,
    launch_id: str,
    old: asyncpg.Record,
    to_store: str,
    unit_no: int,
    new_hold: str,
    who: tuple[str, str, str],
) -> asyncpg.Record:
    """Postgres's half of a move: the reservation onto its new unit, the audit event, and
    the old unit's return to stock (through the outbox). `who`: actor, channel, reason."""
    actor, channel, reason = who
    row = await con.fetchrow(
        "UPDATE reservations SET store_id = $2, unit_no = $3, hold_id = $4 WHERE id = $1"
        f" RETURNING {RESERVATION_COLUMNS}",
        old["id"],
        to_store,
        unit_no,
        new_hold,
    )
    await _record(
        con,
        launch_id,
        old,
        "reservation.moved",
        actor=actor,
        channel=channel,
        reason=reason,
        from_store=old["store_id"],
        to_store=to_store,
        sku=old["sku_id"],
    )
    payload = {"store": old["store_id"], "sku": old["sku_id"], "unit": old["unit_no"]}
    payload |= {"hold": old["hold_id"], "to_store": to_store, "to_hold": new_hold}
    await enqueue(con, launch_id, "move_unit", payload)
    assert row is not None  # the reservation is locked: the update finds it
    return row


async def _undo_move(
    deps: Deps, tx: Any, keys: LaunchKeys, taken: str | None, exc: BaseException
) -> str | None:
    """Roll the move back, and give the unit taken under hold `taken` back (or count it
    sold, if Postgres refused it as sold). Returns the refusal's word, if any."""
    refused = next((w for t, w in _REFUSED.items() if isinstance(exc, t)), None)
    try:
        await tx.rollback()
    finally:
        if taken is not None:
            await store.confirm_abort(
                deps.scripts,
                keys,
                now_ms=deps.clock.now_ms(),
                hold_id=taken,
                why=refused or "retry",
            )
    return refused


async def _take_unit(
    deps: Deps, keys: LaunchKeys, old: asyncpg.Record, to_store: str, new_hold: str
) -> int:
    """Take a free unit of the reservation's SKU at `to_store` in Redis (`move_begin`:
    *confirming* under `new_hold`, so no shopper can hold it); its unit number."""
    unit = await store.move_begin(
        deps.scripts,
        keys,
        now_ms=deps.clock.now_ms(),
        hold_id=new_hold,
        registration_id=old["registration_id"],
        store_id=to_store,
        sku_id=old["sku_id"],
        deadline_ms=confirm.deadline_ms(deps),
    )
    if isinstance(unit, int):
        return unit
    if unit == store.NOT_LOADED:
        raise errors.Unavailable("The launch's stock is being rebuilt; try again.")
    if unit == "unknown-item":
        raise errors.NotFound(f"This launch has no store {to_store!r}.")
    if unit == "sold-out":
        raise errors.SoldOut(
            f"{to_store} has no {old['sku_id']} free; the reservation stays at {old['store_id']}."
        )
    holds.raise_for(unit)
    raise RuntimeError(f"unexpected move_begin reply {unit!r}")


async def extend_pickup(
    deps: Deps,
    launch_id: str,
    reservation_id: int,
    ends_at: datetime,
    *,
    actor: str,
    channel: str,
    reason: str,
) -> PickupWindow:
    """Let one customer collect later than the launch's pickup window says."""
    async with deps.pool.acquire() as con, con.transaction():
        row = await _locked(con, launch_id, reservation_id)
        _must_be_confirmed(row, "extended")
        if row["launch_end"] is None:
            raise errors.Conflict("This launch's pickup has no end; there is nothing to extend.")
        current = max(row["launch_end"], row["own_end"] or row["launch_end"])
        if ends_at <= current or ends_at <= now_of(deps):
            raise errors.InvalidField(
                f"The new end must be later than the current one ({describe(None, current)})"
                " and in the future.",
                field="ends_at",
            )
        await con.execute(
            "UPDATE reservations SET pickup_ends_at = $2 WHERE id = $1", reservation_id, ends_at
        )
        await _record(
            con,
            launch_id,
            row,
            "reservation.pickup_extended",
            actor=actor,
            channel=channel,
            reason=reason,
            ends_at=ends_at.isoformat(),
            was=current.isoformat(),
        )
    return PickupWindow(
        reservation_id=reservation_id,
        starts_at=row["pickup_starts_at"],
        ends_at=ends_at,
        extended=True,
    )


async def resend_code(
    deps: Deps, launch_id: str, reservation_id: int, *, actor: str, channel: str, reason: str
) -> int:
    """Send the reservation's confirmation (code and QR code) again; returns its outbox id."""
    async with deps.pool.acquire() as con, con.transaction():
        row = await _locked(con, launch_id, reservation_id)
        _must_be_confirmed(row, "resent")
        payload = {"reservation": reservation_id, "registration": row["registration_id"]}
        # A new key each time: the first confirmation's is spent, and each resend is asked for.
        key = f"resend:{reservation_id}:{secrets.token_hex(8)}"
        outbox_id = await enqueue_notification(
            con, launch_id, "reservation_confirmed", payload, dedupe_key=key
        )
        assert outbox_id is not None
        await _record(
            con,
            launch_id,
            row,
            "reservation.code_resent",
            actor=actor,
            channel=channel,
            reason=reason,
            outbox=outbox_id,
        )
    return outbox_id


async def add_note(
    deps: Deps, launch_id: str, registration_id: int, note: str, *, actor: str, channel: str
) -> TimelineEntry:
    """Write a note on the customer's timeline."""
    async with deps.pool.acquire() as con, con.transaction():
        exists = await con.fetchval(
            "SELECT 1 FROM registrations WHERE launch_id = $1 AND id = $2",
            launch_id,
            registration_id,
        )
        if exists is None:
            raise errors.NotFound("No such registration in this launch.")
        at = await events.record(
            con,
            launch_id=launch_id,
            actor=actor,
            channel=channel,
            kind="customer.note",
            subject=subjects.registration(registration_id),
            data={"note": note},
        )
    return TimelineEntry(
        at=at, kind="customer.note", actor=actor, channel=channel, data={"note": note}
    )


async def book(
    deps: Deps,
    launch_id: str,
    registration_id: int,
    store_id: str,
    sku_id: str,
    *,
    actor: str,
    channel: str,
    reason: str,
) -> Reservation:
    """Reserve a unit for a customer on the phone. The agent vouches for them (no queue),
    but the per-customer limit and the stock hold as on every other channel: the same
    reserve script and the same Postgres constraints decide."""
    exists = await deps.pool.fetchval(
        "SELECT 1 FROM registrations WHERE launch_id = $1 AND id = $2", launch_id, registration_id
    )
    if exists is None:
        raise errors.NotFound("No such registration in this launch.")
    hold = await holds.reserve(deps, launch_id, registration_id, store_id, sku_id)
    done = await confirm.confirm(
        deps, launch_id, registration_id, hold.hold_id, channel=channel, actor=actor
    )
    await events.record(
        deps.pool,
        launch_id=launch_id,
        actor=actor,
        channel=channel,
        kind="reservation.booked_by_agent",
        subject=subjects.registration(registration_id),
        data={"reservation": done.id, "reason": reason},
    )
    return done
