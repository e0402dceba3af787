"""Allocations: how many units of a SKU a store may sell. Every unit is a row."""

from __future__ import annotations

import hashlib
import secrets

import asyncpg

from service import errors, events
from service.deps import Deps, launch_lock
from service.infra.db import Conn
from service.infra.keys import pair
from service.stock.counts import redis_counts
from service.stock.holds import run_loaded
from service.stock.models import StockCount
from service.stock.outbox import apply_now, enqueue
from service.stock.rebuild import ensure_loaded


def _pair_lock(launch_id: str, store_id: str, sku_id: str) -> int:
    digest = hashlib.sha256(f"fairdrop-pair:{launch_id}:{store_id}:{sku_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


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
    """Raise (units join at once) or lower (refused below held + confirmed)."""
    async with deps.pool.acquire() as con:
        await _check_item(con, launch_id, store_id, sku_id)
        current: int = await con.fetchval(
            "SELECT count(*) FROM units WHERE launch_id = $1 AND store_id = $2 AND sku_id = $3",
            launch_id,
            store_id,
            sku_id,
        )
    if allocated > current:
        await _raise(deps, launch_id, store_id, sku_id, allocated - current, actor, channel)
    elif allocated < current:
        await _lower(deps, launch_id, store_id, sku_id, current - allocated, actor, channel)
    return await _count(deps, launch_id, store_id, sku_id)


async def _raise(
    deps: Deps, launch_id: str, store_id: str, sku_id: str, n: int, actor: str, channel: str
) -> None:
    async with deps.pool.acquire() as con, con.transaction():
        await con.execute("SELECT pg_advisory_xact_lock_shared($1)", launch_lock(launch_id))
        await con.execute(
            "SELECT pg_advisory_xact_lock($1)", _pair_lock(launch_id, store_id, sku_id)
        )
        units: list[int] = [
            r["unit_no"]
            for r in await con.fetch(
                "INSERT INTO units (launch_id, store_id, sku_id, unit_no)"
                " SELECT $1, $2, $3, base + g FROM generate_series(1, $4) AS g,"
                " (SELECT coalesce(max(unit_no), -1) AS base FROM units"
                "  WHERE launch_id = $1 AND store_id = $2 AND sku_id = $3) AS m"
                " RETURNING unit_no",
                launch_id,
                store_id,
                sku_id,
                n,
            )
        ]
        await enqueue(
            con, launch_id, "add_units", {"store": store_id, "sku": sku_id, "units": units}
        )
        await events.record(
            con,
            launch_id=launch_id,
            actor=actor,
            channel=channel,
            kind="allocation.raised",
            subject=f"launch:{launch_id}",
            data={"store": store_id, "sku": sku_id, "added": n},
        )
    await apply_now(deps, launch_id)


async def _lower(
    deps: Deps, launch_id: str, store_id: str, sku_id: str, n: int, actor: str, channel: str
) -> None:
    # Redis knows which units are free (not held); take them out there first, all or none.
    reply = await run_loaded(
        deps, "withdraw_units", launch_id, deps.clock.now_ms(), pair(store_id, sku_id), n
    )
    if reply[0] == "short":
        raise errors.AllocationTooLow(
            f"Only {reply[1]} units are free; the rest are held or confirmed.", free=int(reply[1])
        )
    units = [int(u) for u in reply[1:]]
    try:
        async with deps.pool.acquire() as con, con.transaction():
            await con.execute("SELECT pg_advisory_xact_lock_shared($1)", launch_lock(launch_id))
            await con.execute(
                "DELETE FROM units WHERE launch_id = $1 AND store_id = $2 AND sku_id = $3"
                " AND unit_no = ANY($4)",
                launch_id,
                store_id,
                sku_id,
                units,
            )
            await events.record(
                con,
                launch_id=launch_id,
                actor=actor,
                channel=channel,
                kind="allocation.lowered",
                subject=f"launch:{launch_id}",
                data={"store": store_id, "sku": sku_id, "removed": n},
            )
    except BaseException as exc:
        # Undo in Redis; a foreign-key refusal means Postgres holds a live reservation
        # on one of these units, so Redis was wrong about it being free.
        await deps.scripts.run(
            "add_units",
            deps.keys(launch_id),
            f"undo:{secrets.token_hex(6)}",
            pair(store_id, sku_id),
            *sorted(units),  # ascending, so the fresh run's end comes back as it was
        )
        if isinstance(exc, asyncpg.ForeignKeyViolationError):
            raise errors.AllocationTooLow("Some of those units are reserved.") from exc
        raise
