"""Confirming a hold: the one step that crosses Redis and Postgres (DESIGN §4).

1. `confirm_begin` (Lua) marks the hold *confirming* so it cannot expire.
2. One Postgres statement inserts the reservation keyed by hold id (idempotent),
   with its event and outbox rows. The reservation claims the hold's unit row and
   one of the customer's limit slots; unique indexes make Postgres refuse a second
   live claim on either, whatever Redis believed.
3. `confirm_end` (Lua) turns the hold into a confirmed unit, or `confirm_abort`
   settles it when Postgres refused step 2.

A confirming hold never goes back to *held*: an insert that failed, timed out or lost
its connection may still commit (a frozen server reads it later; a twin confirm of the
same hold may be in flight), so giving its unit back could sell it twice. It stays
confirming until a retry of the confirm, or the reconciler after
`FAIRDROP_CONFIRM_DEADLINE`, runs step 2 again: the insert is idempotent, so whichever
runs first commits and the other finds its reservation (`service/stock/reconciler.py`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Sequence

import asyncpg

from service import errors, subjects
from service.deps import Deps
from service.infra.outages import outage
from service.stock.codes import new_code
from service.stock.holds import gone, raise_for, run_loaded
from service.stock.mend import mend_holds
from service.stock.models import RESERVATION_COLUMNS, Reservation, reservation_from_row
from service.store import stock as store
from service.store import supply
from service.store.stock import Begun

log = logging.getLogger(__name__)

_COLUMNS = (
    "launch_id, hold_id, registration_id, store_id, sku_id, unit_no, slot, code, channel, actor"
)


def insert_sql(input_rows: str, conflict_target: str) -> str:
    """One statement (one round trip, its own transaction) that records reservations
    for `input_rows` (a query giving `_COLUMNS`) with their event and outbox rows.

    The launch guard drops a row whose slot is not below the launch's limit; a row
    refused by `ON CONFLICT` is not returned either.
    """
    return f"""
WITH input AS ({input_rows}), ok AS (
    SELECT i.* FROM input i JOIN launches l ON l.id = i.launch_id
    WHERE i.slot < l.per_customer_limit
), r AS (
    INSERT INTO reservations
        (launch_id, hold_id, registration_id, store_id, sku_id, unit_no, slot, code, channel)
    SELECT launch_id, hold_id, registration_id, store_id, sku_id, unit_no, slot, code, channel
    FROM ok ORDER BY launch_id, store_id, sku_id, unit_no
    ON CONFLICT {conflict_target} DO NOTHING
    RETURNING {RESERVATION_COLUMNS}
), e AS (
    INSERT INTO events (launch_id, actor, channel, kind, subject, data)
    SELECT r.launch_id, i.actor, r.channel, 'reservation.confirmed',
           'registration:' || r.registration_id,
           jsonb_build_object('reservation', r.id, 'hold', r.hold_id, 'store', r.store_id,
                              'sku', r.sku_id, 'code', r.code)
    FROM r JOIN input i ON i.launch_id = r.launch_id AND i.hold_id = r.hold_id
), o AS (
    INSERT INTO outbox (launch_id, topic, payload)
    SELECT launch_id, 'notify.reservation_confirmed',
           jsonb_build_object('reservation', id, 'registration', registration_id)
    FROM r
)
SELECT * FROM r
"""


# One hold: only a second confirm of the same hold is absorbed; any other unique
# violation raises, naming the index that refused (unit or slot taken).
_INSERT = insert_sql(
    "SELECT * FROM (VALUES ($1::text, $2::text, $3::bigint, $4::text, $5::text, $6::int,"
    f" $7::smallint, $8::text, $9::text, $10::text)) AS t({_COLUMNS})",
    "(launch_id, hold_id)",
)
# Many holds: every refused row is just left out; the one-hold path finds out why.
INSERT_MANY = insert_sql(
    "SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],"
    f" $6::int[], $7::smallint[], $8::text[], $9::text[], $10::text[]) AS t({_COLUMNS})",
    "",
)


_BY_HOLD = f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE launch_id = $1 AND hold_id = $2"

# Which unique index refused the insert → how Redis must settle the hold.
_REFUSALS: dict[str, store.AbortWhy] = {
    "reservations_one_per_unit": "unit-taken",
    "reservations_one_per_slot": "slot-taken",
}


async def find_by_hold(deps: Deps, launch_id: str, hold_id: str) -> Reservation | None:
    row = await deps.pool.fetchrow(_BY_HOLD, launch_id, hold_id)
    return None if row is None else reservation_from_row(row)


async def _abort(deps: Deps, launch_id: str, hold_id: str, why: store.AbortWhy) -> None:
    await store.confirm_abort(
        deps.scripts, deps.keys(launch_id), now_ms=deps.clock.now_ms(), hold_id=hold_id, why=why
    )


async def _committed_anyway(
    deps: Deps, launch_id: str, hold_id: str, exc: BaseException
) -> Reservation:
    """The insert failed, or its reply was lost after it committed (a timeout, a dropped
    connection), or an earlier confirm of this hold committed: its reservation, if
    Postgres has one now. Else the hold stays confirming (see the module's docstring)."""
    unavailable = errors.Unavailable("The reservation could not be saved yet; try again.")
    try:
        done = await find_by_hold(deps, launch_id, hold_id)
    except (TimeoutError, asyncpg.PostgresError, OSError, errors.Unavailable):
        raise unavailable from exc
    if done is None:
        raise unavailable from exc
    return done


async def _insert(
    deps: Deps,
    launch_id: str,
    hold_id: str,
    registration_id: int,
    store_id: str,
    sku_id: str,
    unit_no: int,
    slot: int,
    channel: str,
    actor: str,
) -> Reservation | None:
    """Insert the reservation; None when the launch guard refused (slot ≥ limit)."""
    timeout = deps.settings.confirm_deadline_seconds / 3
    for _attempt in range(5):
        try:
            row = await deps.pool.fetchrow(
                _INSERT,
                launch_id,
                hold_id,
                registration_id,
                store_id,
                sku_id,
                unit_no,
                slot,
                new_code(),
                channel,
                actor,
                timeout=timeout,
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "reservations_launch_id_code_key":
                continue  # two codes collided (2^-50 odds): draw another
            # A concurrent confirm of this same hold may have committed first, its row
            # reaching the unit or slot index before ours (ON CONFLICT covers only the
            # hold id): then its reservation is this confirm's result, not a refusal.
            existing = await find_by_hold(deps, launch_id, hold_id)
            if existing is not None:
                return existing
            raise
        if row is not None:
            return reservation_from_row(row)
        existing = await find_by_hold(deps, launch_id, hold_id)
        if existing is not None:
            return existing
        return None
    raise RuntimeError("could not draw a unique reservation code")


async def settle_begin(
    deps: Deps, launch_id: str, registration_id: int, hold_id: str, reply: Begun | str
) -> Reservation | Begun:
    """What `confirm_begin`'s reply means: the hold to record, the reservation an earlier
    confirm of this hold made, or an error."""
    if isinstance(reply, Begun):
        return reply
    if reply == "hold-not-found":
        # Already confirmed by an earlier call (the hold is gone from Redis)?
        done = await find_by_hold(deps, launch_id, hold_id)
        if done is not None and done.registration_id == registration_id:
            return done
        raise await gone(deps, launch_id, registration_id, hold_id)
    raise_for(reply)
    raise RuntimeError(f"unexpected confirm_begin reply {reply!r}")


async def record(
    deps: Deps,
    launch_id: str,
    registration_id: int,
    hold_id: str,
    begun: Begun,
    channel: str,
    actor: str,
) -> Reservation:
    """Step 2 for one hold: insert its reservation, or settle the hold in Redis and raise."""
    try:
        reservation = await _insert(
            deps,
            launch_id,
            hold_id,
            registration_id,
            begun.store_id,
            begun.sku_id,
            begun.unit_no,
            begun.slot,
            channel,
            actor,
        )
    except asyncpg.UniqueViolationError as exc:
        why = _REFUSALS.get(exc.constraint_name or "", "unit-taken")
        await _abort(deps, launch_id, hold_id, why)
        log.warning("confirm of %s refused by Postgres (%s)", hold_id, exc.constraint_name)
        raise errors.ConfirmRefused() from exc
    except asyncpg.ForeignKeyViolationError as exc:
        await _abort(deps, launch_id, hold_id, "no-such-unit")
        log.warning("confirm of %s refused: unit %s does not exist", hold_id, begun.unit_no)
        raise errors.ConfirmRefused() from exc
    except (TimeoutError, asyncpg.PostgresError, OSError) as exc:
        reservation = await _committed_anyway(deps, launch_id, hold_id, exc)
    if reservation is None:
        await _abort(deps, launch_id, hold_id, "slot-taken")
        raise errors.LimitReached()
    return reservation


def deadline_ms(deps: Deps) -> int:
    return deps.clock.now_ms() + int(deps.settings.confirm_deadline_seconds * 1000)


async def confirm(
    deps: Deps,
    launch_id: str,
    registration_id: int,
    hold_id: str,
    *,
    channel: str = "web",
    actor: str | None = None,
) -> Reservation:
    """Turn a live hold into a durable reservation with a code, or raise why not."""
    actor = actor or subjects.registration(registration_id)
    call = functools.partial(
        store.confirm_begin,
        deps.scripts,
        deps.keys(launch_id),
        now_ms=deps.clock.now_ms(),
        deadline_ms=deadline_ms(deps),
        holds=[(hold_id, registration_id)],
    )
    replies = await run_loaded(deps, launch_id, call)
    if isinstance(replies, str):
        raise errors.Unavailable("The launch's stock could not be loaded; try again.")
    begun = await settle_begin(deps, launch_id, registration_id, hold_id, replies[0])
    if isinstance(begun, Reservation):
        return begun
    reservation = await record(deps, launch_id, registration_id, hold_id, begun, channel, actor)
    await end(deps, [(launch_id, hold_id)])
    return reservation


async def end(deps: Deps, committed: Sequence[tuple[str, str]]) -> None:
    """Step 3 for holds (launch id, hold id) whose reservations committed, one round trip.

    Every answer leaves Redis right: `ok`; `gone` when the hold was settled already, by
    a twin confirm of the same hold or the reconciler (both confirm it: neither gives a
    confirming hold back) or by a Redis loss (the rebuild reads Postgres). Redis not
    answering leaves the hold confirming, and the reconciler ends it."""
    if not committed:
        return
    holds: dict[str, list[str]] = {}
    for launch_id, hold_id in committed:
        holds.setdefault(launch_id, []).append(hold_id)
    calls = [(deps.keys(launch_id), ids) for launch_id, ids in holds.items()]
    try:
        replies = await store.confirm_end_each(deps.scripts, calls, now_ms=deps.clock.now_ms())
    except errors.Unavailable:
        log.warning("confirm_end for %d hold(s) left to the reconciler", len(committed))
        return
    for (launch_id, ids), reply in zip(holds.items(), replies, strict=True):
        if isinstance(reply, Exception):
            log.warning("confirm_end on %s failed (%r); the reconciler ends it", launch_id, reply)
            continue
        gone = [hold for hold, ended in zip(ids, reply, strict=True) if not ended]
        if gone:
            log.info("confirm_end: %d hold(s) of %s were settled already", len(gone), launch_id)
            await _mend_gone(deps, launch_id, gone)


async def _mend_gone(deps: Deps, launch_id: str, hold_ids: list[str]) -> None:
    """Holds of committed confirms that Redis no longer has: settled already by a twin
    confirm or the reconciler (nothing to mend), or lost to a rebuild that read Postgres
    before the insert committed, which offers the unit again. Withdraw any such unit; if
    that fails, mark the launch suspect so the sweeper mends it all."""
    try:
        await mend_holds(deps, launch_id, hold_ids)
    except Exception as exc:
        if outage(exc) is None and not isinstance(exc, errors.Unavailable):
            raise
        log.warning("mending %s after confirm_end failed (%r); left to the sweeper", launch_id, exc)
        with contextlib.suppress(Exception):
            await supply.mark_suspect(
                deps.scripts, deps.keys(launch_id), now_ms=deps.clock.now_ms()
            )
