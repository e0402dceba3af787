"""Stock counts as Redis and as Postgres see them (dashboards, tests, rebuild checks)."""

from __future__ import annotations

from service.deps import Deps
from service.stock.models import StockCount
from service.store import supply


async def redis_counts(deps: Deps, launch_id: str) -> list[StockCount]:
    """Each (store, sku)'s counts as Redis has them at one moment."""
    snap = await supply.stock_snapshot(deps.scripts, deps.keys(launch_id))
    out = []
    for p, allocated in sorted(snap.allocated.items()):  # in order, as the pages list them
        store_id, sku_id = p.split(":", 1)
        out.append(
            StockCount(
                store_id=store_id,
                sku_id=sku_id,
                allocated=allocated,
                available=snap.free[p] + snap.fresh[p],
                held=snap.held.get(p, 0),
                confirmed=snap.confirmed.get(p, 0),
            )
        )
    return out


async def units_left(deps: Deps, launch_id: str) -> int | None:
    """Units available or held, as Redis counts them; None while Redis has not loaded
    the launch (nothing to go by)."""
    if not await supply.is_loaded(deps.scripts, deps.keys(launch_id)):
        return None
    return sum(c.available + c.held for c in await redis_counts(deps, launch_id))


async def postgres_counts(deps: Deps, launch_id: str) -> dict[str, tuple[int, int]]:
    """`"store:sku"` → (allocated units, live reservations), from the source of truth."""
    rows = await deps.pool.fetch(
        "SELECT u.store_id, u.sku_id, count(*) AS allocated, count(r.id) AS live"
        " FROM units u LEFT JOIN reservations r ON r.launch_id = u.launch_id"
        " AND r.store_id = u.store_id AND r.sku_id = u.sku_id AND r.unit_no = u.unit_no"
        " WHERE u.launch_id = $1 GROUP BY u.store_id, u.sku_id",
        launch_id,
    )
    return {f"{r['store_id']}:{r['sku_id']}": (r["allocated"], r["live"]) for r in rows}
