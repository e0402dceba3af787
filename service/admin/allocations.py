"""Allocations: how many units of a SKU a store may sell. Every unit is a row.

A change costs in proportion to its size and never holds a lock for long: it goes in
steps of at most `STEP` units, each a short transaction of its own under the launch's
shared lock (a rebuild, which takes it exclusively, waits one step, not the whole
change), with one `generate_series` insert or one ranged delete, an outbox row naming
the units as a run (which `lua/add_units.lua` adds in O(1)) and an event. Changes of
one store and SKU take turns on the pair's lock, held for the whole change; a second
one meanwhile is refused. Postgres keeps each allocation's size (`allocations`,
migrations/0014) and bounds it to `MAX_ALLOCATED`.
"""

from __future__ import annotations

import functools
import hashlib
import secrets

import asyncpg

from service import errors, events, subjects
from service.admin.models import MAX_ALLOCATED
from service.deps import Deps
from service.infra.db import Conn
from service.infra.keys import LaunchKeys, pair
from service.stock.counts import redis_counts
from service.stock.holds import raise_for, run_loaded
from service.stock.models import StockCount
from service.stock.outbox import apply_now, enqueue
from service.stock.rebuild import ensure_loaded
from service.store import supply


def _pair_lock(schema: str, launch_id: str, store_id: str, sku_id: str) -> int:
    # Advisory locks are the database's, not a schema's: two schemas must not share one.
    pair_name = f"fairdrop-pair:{schema}:{launch_id}:{store_id}:{sku_id}"
    digest = hashlib.sha256(pair_name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


STEP = 20_000
"""Units added or removed in one transaction, so that no lock is held for long: ~0.05 s
to add them here, ~0.2 s to remove them (each removed unit's reservations' foreign key
is checked; ~1 s with the machine loaded)."""


async def _check_item(con: Conn, launch_id: str, store_id: str, sku_id: str) -> None:
    row = await con.fetchrow(
        "SELECT EXISTS (SELECT 1 FROM stores WHERE launch_id = $1 AND id = $2) AS store,"
        " EXISTS (SELECT 1 FROM skus WHERE launch_id = $1 AND id = $3) AS sku",
        launch_id,
        store_id,
        sku_id,
    )
    assert row is not None
    if not row["store"]:
        raise errors.NotFound(f"The launch has no store {store_id!r}.")
    if not row["sku"]:
        raise errors.NotFound(f"The launch has no SKU {sku_id!r}.")


async def _count(deps: Deps, launch_id: str, store_id: str, sku_id: str) -> StockCount:
    await ensure_loaded(deps, launch_id)
    for count in await redis_counts(deps, launch_id):
        if (count.store_id, count.sku_id) == (store_id, sku_id):
            return count
    return StockCount(
        store_id=store_id, sku_id=sku_id, allocated=0, available=0, held=0, confirmed=0
    )


async def set_allocation(
    deps: Deps,
    launch_id: str,
    store_id: str,
    sku_id: str,
    allocated: int,
    *,
    actor: str,
    channel: str,
) -> StockCount:
    """Raise (units join at once) or lower (refused below held + confirmed), in steps.

    A change that stops part-way (units held meanwhile, a lost connection) leaves the
    allocation where its last step put it, each step an event; set it again to go on."""
    if not 0 <= allocated <= MAX_ALLOCATED:
        raise errors.InvalidField(
            f"An allocation is 0 to {MAX_ALLOCATED:,} units.", field="allocated"
        )
    lock = _pair_lock(deps.settings.db_schema, launch_id, store_id, sku_id)
    async with deps.pool.acquire() as con:
        await _check_item(con, launch_id, store_id, sku_id)
        if not await con.fetchval("SELECT pg_try_advisory_lock($1)", lock):
            raise errors.Conflict(
                "Another change of this allocation is under way; try again when it is done."
            )
        try:
            current: int = await con.fetchval(
                "SELECT coalesce(max(allocated), 0) FROM allocations"
                " WHERE launch_id = $1 AND store_id = $2 AND sku_id = $3",
                launch_id,
                store_id,
                sku_id,
            )
            item = (launch_id, store_id, sku_id)
            while current < allocated:
                step = min(STEP, allocated - current)
                await _raise(deps, con, *item, step, actor, channel)
                current += step
            while current > allocated:
                step = min(STEP, current - allocated)
                await _lower(deps, con, *item, step, actor, channel, allocated_now=current)
                current -= step
        finally:
            await con.execute("SELECT pg_advisory_unlock($1)", lock)
    return await _count(deps, launch_id, store_id, sku_id)


async def _raise(
    deps: Deps,
    con: Conn,
    launch_id: str,
    store_id: str,
    sku_id: str,
    n: int,
    actor: str,
    channel: str,
) -> None:
    async with con.transaction():
        await con.execute("SELECT pg_advisory_xact_lock_shared($1)", deps.launch_lock(launch_id))
        # Not max(unit_no): without statistics (a fresh bulk load) the planner counts
        # through every unit for it; the index read backwards stops at the first.
        first: int = await con.fetchval(
            "SELECT coalesce((SELECT unit_no + 1 FROM units"
            " WHERE launch_id = $1 AND store_id = $2 AND sku_id = $3"
            " ORDER BY unit_no DESC LIMIT 1), 0)",
            launch_id,
            store_id,
            sku_id,
        )
        await con.execute(
            "INSERT INTO units (launch_id, store_id, sku_id, unit_no)"
            " SELECT $1, $2, $3, g FROM generate_series($4::integer, $5::integer) AS g",
            launch_id,
            store_id,
            sku_id,
            first,
            first + n - 1,
        )
        await enqueue(
            con,
            launch_id,
            "add_units",
            {"store": store_id, "sku": sku_id, "first": first, "end": first + n},
        )
        await events.record(
            con,
            launch_id=launch_id,
            actor=actor,
            channel=channel,
            kind="allocation.raised",
            subject=subjects.launch(launch_id),
            data={"store": store_id, "sku": sku_id, "added": n},
        )
    await apply_now(deps, launch_id)


async def _lower(
    deps: Deps,
    con: Conn,
    launch_id: str,
    store_id: str,
    sku_id: str,
    n: int,
    actor: str,
    channel: str,
    *,
    allocated_now: int,
) -> None:
    keys = deps.keys(launch_id)
    taken = await _withdraw(deps, keys, launch_id, pair(store_id, sku_id), n, allocated_now)
    first, end, singles = taken.first, taken.end, taken.units
    try:
        async with con.transaction():
            await con.execute(
                "SELECT pg_advisory_xact_lock_shared($1)", deps.launch_lock(launch_id)
            )
            await _delete_units(con, launch_id, store_id, sku_id, first, end, singles)
            await events.record(
                con,
                launch_id=launch_id,
                actor=actor,
                channel=channel,
                kind="allocation.lowered",
                subject=subjects.launch(launch_id),
                data={"store": store_id, "sku": sku_id, "removed": n},
            )
    except BaseException as exc:
        # Undo in Redis; a foreign-key refusal means Postgres holds a live reservation
        # on one of these units, so Redis was wrong about it being free.
        await supply.add_units(
            deps.scripts,
            keys,
            outbox_id=f"undo:{secrets.token_hex(6)}",
            pair=pair(store_id, sku_id),
            first=first,
            end=end,
            units=sorted(singles),
        )
        if isinstance(exc, asyncpg.ForeignKeyViolationError):
            raise errors.AllocationTooLow("Some of those units are reserved.") from exc
        raise


async def _withdraw(
    deps: Deps, keys: LaunchKeys, launch_id: str, key: str, n: int, allocated_now: int
) -> supply.Withdrawn:
    """Take `n` free units of "store:sku" `key` out of Redis, all or none: Redis knows
    which units are free (not held), so they go there first."""
    call = functools.partial(
        supply.withdraw_units,
        deps.scripts,
        keys,
        now_ms=deps.clock.now_ms(),
        pair=key,
        n=n,
    )
    taken = await run_loaded(deps, launch_id, call)
    if isinstance(taken, supply.Short):
        raise errors.AllocationTooLow(
            f"Only {taken.free} units are free; the rest are held or confirmed."
            f" The allocation is {allocated_now:,} now.",
            free=taken.free,
            allocated=allocated_now,
        )
    if isinstance(taken, str):
        raise_for(taken)
        raise RuntimeError(f"unexpected withdraw_units reply {taken!r}")
    return taken


async def _delete_units(
    con: Conn,
    launch_id: str,
    store_id: str,
    sku_id: str,
    first: int,
    end: int,
    singles: list[int],
) -> None:
    """Delete the unit rows [first, end) and `singles` of one store and SKU."""
    # Two statements: with an OR between them, the index would be read through every
    # unit of the pair instead of only the ones going.
    where = "DELETE FROM units WHERE launch_id = $1 AND store_id = $2 AND sku_id = $3"
    if first < end:
        await con.execute(
            where + " AND unit_no >= $4 AND unit_no < $5", launch_id, store_id, sku_id, first, end
        )
    if singles:
        await con.execute(
            where + " AND unit_no = ANY($4::integer[])", launch_id, store_id, sku_id, singles
        )
