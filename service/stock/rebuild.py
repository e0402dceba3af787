"""Rebuild a launch's hot state in Redis from Postgres, the source of truth.

available = allocated - live reservations; live holds are lost and their units
return. Runs under the launch's exclusive advisory lock, so no cancellation or
stock change commits half-way through, and pending stock outbox rows are marked
done in the same transaction (their effect is already in what we read).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field

import asyncpg
import msgspec

from service.deps import Deps
from service.errors import NotFound
from service.infra.db import Conn, allow_long
from service.infra.keys import LaunchKeys, pair
from service.stock.outbox import STOCK_TOPICS
from service.store import supply

_CHUNK = 5000


# Per (store, sku): its units, how many a live reservation owns, one past the highest,
# and the free ones as one array: a row a pair, not a row a unit (600k units: 0.5-1 s
# where the rows took 1.3 s, and the rebuild 2.2 s in all where it took 1.8-2.5).
_STOCK = """
SELECT u.store_id, u.sku_id, count(*) AS allocated, count(r.id) AS confirmed,
       max(u.unit_no) + 1 AS top,
       coalesce(array_agg(u.unit_no ORDER BY u.unit_no) FILTER (WHERE r.id IS NULL), '{}') AS free
FROM units u LEFT JOIN reservations r ON r.launch_id = u.launch_id
    AND r.store_id = u.store_id AND r.sku_id = u.sku_id AND r.unit_no = u.unit_no
WHERE u.launch_id = $1
GROUP BY u.store_id, u.sku_id
"""


class RebuildReport(msgspec.Struct, frozen=True):
    launch_id: str
    allocated: int
    confirmed: int
    available: int


def selling_flag(state: str, paused: bool) -> int:
    """Whether the scripts may hold and admit. A sold-out launch sells on: a unit that
    comes back is offered at once, before the launch's state follows the stock."""
    return 1 if state in ("selling", "sold_out") and not paused else 0


async def rebuild(deps: Deps, launch_id: str) -> RebuildReport:
    report = await _rebuild(deps, launch_id, unless_loaded=False)
    assert report is not None
    return report


async def _rebuild(deps: Deps, launch_id: str, *, unless_loaded: bool) -> RebuildReport | None:
    keys = deps.keys(launch_id)
    async with deps.pool.acquire() as con, con.transaction():
        await con.execute("SELECT pg_advisory_xact_lock($1)", deps.launch_lock(launch_id))
        # The lock is waited for as any request waits; reading every unit may take longer.
        await allow_long(con, deps.settings)
        # Callers that found the launch missing all queue on the lock; only the first
        # loads it. Another load would wipe the holds taken since (they live in Redis only).
        if unless_loaded and await supply.is_loaded(deps.scripts, keys):
            return None
        launch = await con.fetchrow(
            "SELECT state, paused, hold_seconds, per_customer_limit FROM launches WHERE id = $1",
            launch_id,
        )
        if launch is None:
            raise NotFound(f"No launch {launch_id!r}.")
        await con.execute(
            "UPDATE outbox SET processed_at = now() WHERE launch_id = $1"
            " AND processed_at IS NULL AND topic = ANY($2)",
            launch_id,
            STOCK_TOPICS,
        )
        stock = await _read_stock(con, launch_id)
        await _load(deps, keys, stock, launch)
    total_alloc = sum(stock.allocated.values())
    total_conf = sum(stock.confirmed.values())
    return RebuildReport(launch_id, total_alloc, total_conf, total_alloc - total_conf)


@dataclass
class _Stock:
    """A launch's stock as Postgres has it, per "store:sku"."""

    allocated: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    confirmed: dict[str, int] = field(default_factory=dict)
    free: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    top: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """One past the highest unit number."""
    masks: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """Registration → its limit slots in use, as a bitmask."""


async def _read_stock(con: Conn, launch_id: str) -> _Stock:
    stock = _Stock()
    for row in await con.fetch(_STOCK, launch_id):
        key = pair(row["store_id"], row["sku_id"])
        stock.allocated[key], stock.confirmed[key] = row["allocated"], row["confirmed"]
        stock.free[key], stock.top[key] = row["free"], row["top"]
    # Pairs with no units yet still exist for the scripts (sold out, not unknown).
    for row in await con.fetch(
        "SELECT s.id AS store_id, k.id AS sku_id FROM stores s JOIN skus k"
        " ON k.launch_id = s.launch_id WHERE s.launch_id = $1",
        launch_id,
    ):
        stock.allocated[pair(row["store_id"], row["sku_id"])] += 0
    for row in await con.fetch(
        "SELECT registration_id, slot FROM reservations WHERE launch_id = $1 AND slot IS NOT NULL",
        launch_id,
    ):
        stock.masks[str(row["registration_id"])] |= 1 << row["slot"]
    return stock


async def _load(deps: Deps, keys: LaunchKeys, stock: _Stock, launch: asyncpg.Record) -> None:
    """Load `stock` and the launch's settings into Redis, in phases (`lua/load.lua`)."""
    scripts = deps.scripts
    fresh = {key: fresh_run(stock.free[key], stock.top[key]) for key in stock.allocated}
    await supply.load_begin(scripts, keys)
    for key, unit_numbers in stock.free.items():
        # The fresh run goes as its two ends; only the units below it go one by one.
        rest = unit_numbers[: len(unit_numbers) - (fresh[key][1] - fresh[key][0])]
        for start in range(0, len(rest), _CHUNK):
            await supply.load_units(scripts, keys, key, rest[start : start + _CHUNK])
    await supply.load_counts(
        scripts,
        keys,
        allocated=stock.allocated,
        confirmed=stock.confirmed,
        slots=stock.masks,
        fresh=fresh,
    )
    await supply.load_finish(
        scripts,
        keys,
        selling=bool(selling_flag(launch["state"], launch["paused"])),
        hold_ms=launch["hold_seconds"] * 1000,
        limit=launch["per_customer_limit"],
    )


def fresh_run(free: list[int], top: int) -> tuple[int, int]:
    """The pair's fresh run [n, t) out of its free unit numbers (ascending) and `top`, one
    past its highest unit: the free units consecutive up to the highest, so that t is
    where Postgres numbers the next unit added (an empty run at `top` if the highest is
    taken). Redis keeps the run as two numbers; the free units below it go into the free
    set, one by one.

    free[i] - i never falls (the numbers rise by one or more), and it is top - len(free)
    exactly on the run, the longest stretch ending at top - 1: a bisection finds it."""
    start = bisect.bisect_left(range(len(free)), top - len(free), key=lambda i: free[i] - i)
    return (top - (len(free) - start), top)


async def ensure_loaded(deps: Deps, launch_id: str) -> None:
    """Load the launch into Redis from Postgres if Redis does not have it."""
    if not await supply.is_loaded(deps.scripts, deps.keys(launch_id)):
        await _rebuild(deps, launch_id, unless_loaded=True)
