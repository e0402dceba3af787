"""Stock counts as Redis and as Postgres see them (dashboards, tests, rebuild checks)."""

from __future__ import annotations

from service import errors
from service.deps import Deps
from service.stock.models import StockCount

_READS = 5


async def redis_counts(deps: Deps, launch_id: str) -> list[StockCount]:
    """Each (store, sku)'s counts as Redis has them at one moment: every count in one
    transaction, so a hold or return between two reads cannot show a unit twice."""
    keys = deps.keys(launch_id)
    pairs = sorted(str(p) for p in await deps.redis.hkeys(keys.allocated))
    for _ in range(_READS):
        async with deps.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(keys.allocated)
            pipe.hgetall(keys.held)
            pipe.hgetall(keys.confirmed)
            pipe.hgetall(keys.fresh)
            for p in pairs:
                pipe.zlexcount(keys.free, f"[{p}:", f"({p};")
            allocated, held, confirmed, fresh, *available = await pipe.execute()
        if sorted(allocated) == pairs:
            break
        pairs = sorted(allocated)  # a store or model was added meanwhile: read again
    else:
        raise errors.Unavailable("The stock is being changed; try again.")
    out = []
    for p, free in zip(pairs, available, strict=True):
        store_id, sku_id = p.split(":", 1)
        out.append(
            StockCount(
                store_id=store_id,
                sku_id=sku_id,
                allocated=int(allocated[p]),
                available=int(free) + fresh_count(fresh, p),
                held=int(held.get(p, 0)),
                confirmed=int(confirmed.get(p, 0)),
            )
        )
    return out


async def units_left(deps: Deps, launch_id: str) -> int | None:
    """Units available or held, as Redis counts them; None while Redis has not loaded
    the launch (nothing to go by)."""
    if await deps.redis.hget(deps.keys(launch_id).meta, "loaded") != "1":
        return None
    return sum(c.available + c.held for c in await redis_counts(deps, launch_id))


def fresh_count(fresh: dict[str, str], pair: str) -> int:
    """The units of the pair's fresh run, out of the launch's `fresh` hash."""
    return int(fresh.get(f"{pair}:t", 0)) - int(fresh.get(f"{pair}:n", 0))


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
