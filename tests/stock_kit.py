"""A kit for stock tests: `seed_launch` makes a small selling launch quickly; `read_stock`
reads a launch's stock as Redis and Postgres hold it, and `check_stock` checks DESIGN §3
invariants 1, 2, 3 and 6 on it alone (no model); `EndFails` and `CommitLost` inject faults
into the confirm protocol.

A reservation whose hold Redis still has as *confirming* (its `confirm_end` has not run
yet: a crash, or Redis unreachable at that moment) is counted once, as that hold, until
the reconciler settles it.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, cast

from service.deps import Deps
from service.errors import Unavailable
from service.infra.db import Pool
from service.infra.keys import LaunchKeys
from service.infra.redis import Scripts
from service.stock.codes import normalize_code
from service.stock.rebuild import rebuild

PAIRS = [("S1", "K1"), ("S1", "K2"), ("S2", "K1"), ("S2", "K2")]
_SETUP = """
WITH l AS (INSERT INTO launches (id, name, state, hold_seconds, per_customer_limit)
           VALUES ($1, 'Drop', 'selling', $2, $3) RETURNING id),
     s AS (INSERT INTO stores SELECT id, s, s FROM l, unnest('{S1,S2}'::text[]) s)
INSERT INTO skus SELECT id, k, k FROM l, unnest('{K1,K2}'::text[]) k
"""
_REGISTRATIONS = """
INSERT INTO registrations (launch_id, public_id, email, email_norm, verified_at)
SELECT $1, $1 || g, g || '@x.org', g || '@x.org', now() FROM generate_series(1, $2) g RETURNING id
"""
# Everything read from Postgres, in one round trip.
_PG_STATE = """
SELECT (SELECT per_customer_limit FROM launches WHERE id = $1) AS lim,
       (SELECT coalesce(jsonb_agg(s.id || ':' || k.id), '[]') FROM stores s
          JOIN skus k ON k.launch_id = s.launch_id WHERE s.launch_id = $1) AS pairs,
       (SELECT coalesce(jsonb_agg(jsonb_build_array(store_id || ':' || sku_id, unit_no)), '[]')
          FROM units WHERE launch_id = $1) AS units,
       (SELECT coalesce(jsonb_agg(r), '[]') FROM (
          SELECT id, hold_id, registration_id AS reg, store_id || ':' || sku_id AS pair,
                 unit_no, slot, code, status
          FROM reservations WHERE launch_id = $1) r) AS res,
       (SELECT coalesce(jsonb_object_agg(kind, n), '{}') FROM (
          SELECT kind, count(*) AS n FROM events WHERE launch_id = $1 GROUP BY kind) e) AS events
"""


@dataclass
class StockState:
    # Redis
    alloc: dict[str, int]
    held: dict[str, int]
    confirmed: dict[str, int]
    holds: dict[str, dict[str, Any]]  # hold id -> {r, s, k, u, l, e, st, d}
    cust: dict[int, int]  # registration -> slot bitmask
    free: list[tuple[str, int]]  # ("store:sku", unit)
    expiry: dict[str, int]
    confirming: dict[str, int]
    # Postgres
    limit: int
    pairs: set[str]
    units: set[tuple[str, int]]
    res: list[dict[str, Any]]  # id, hold_id, reg, pair, unit_no, slot, code, status
    events: dict[str, int]  # kind -> count

    @property
    def live(self) -> list[dict[str, Any]]:
        return [r for r in self.res if r["status"] in ("confirmed", "collected")]


async def seed_launch(
    deps: Deps, launch_id: str, hold_seconds: int, limit: int, allocs: list[int], regs: int = 6
) -> list[int]:
    """A selling launch with stores S1, S2 and SKUs K1, K2 (`allocs[i]` units of `PAIRS[i]`),
    straight in SQL and loaded into Redis; returns the registration ids. Fast enough to
    run per Hypothesis example; the admin paths are tested elsewhere."""
    units = [(launch_id, s, k, n) for (s, k), n in zip(PAIRS, allocs, strict=True)]
    async with deps.pool.acquire() as con, con.transaction():
        await con.execute(_SETUP, launch_id, hold_seconds, limit)
        await con.executemany(
            "INSERT INTO units SELECT $1, $2, $3, generate_series(0, $4 - 1)", units
        )
        rows = await con.fetch(_REGISTRATIONS, launch_id, regs)
    await rebuild(deps, launch_id)
    return sorted(r["id"] for r in rows)


class EndFails(Scripts):
    """Redis unreachable just as `confirm_end` runs: the hold stays *confirming*."""

    async def run(self, name: str, keys: LaunchKeys, *args: str | int | float) -> Any:
        if name == "confirm_end":
            raise Unavailable("injected: Redis unreachable")
        return await super().run(name, keys, *args)

    async def run_each(self, name: str, calls: Any, **kwargs: Any) -> list[Any]:
        if name == "confirm_end":
            raise Unavailable("injected: Redis unreachable")
        return await super().run_each(name, calls, **kwargs)


class CommitLost:
    """A pool whose reservation insert commits, then its reply is lost (a timeout)."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    @classmethod
    def around(cls, pool: Pool) -> Pool:
        return cast("Pool", cls(pool))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)

    async def fetchrow(self, query: str, *args: Any, **kwargs: Any) -> Any:
        row = await self._pool.fetchrow(query, *args, **kwargs)
        if "INSERT INTO reservations" in query:
            raise TimeoutError("injected: the reply to a committed insert was lost")
        return row


def _ints(d: dict[str, str]) -> dict[str, int]:
    return {k: int(v) for k, v in d.items()}


async def read_stock(deps: Deps, launch_id: str) -> StockState:
    keys = deps.keys(launch_id)
    async with deps.redis.pipeline(transaction=True) as pipe:
        for name in ("allocated", "held", "confirmed", "holds", "cust"):
            pipe.hgetall(getattr(keys, name))
        pipe.zrange(keys.free, 0, -1)
        pipe.hgetall(keys.fresh)
        pipe.zrange(keys.expiry, 0, -1, withscores=True)
        pipe.zrange(keys.confirming, 0, -1, withscores=True)
        alloc, held, conf, holds, cust, free, fresh, expiry, confirming = await pipe.execute()
    outside = [(p, int(u)) for p, u in (m.rsplit(":", 1) for m in free)]
    # Lowest-first takes the free set before the fresh run: it must lie below the run.
    below = [(p, u) for p, u in outside if u >= int(fresh.get(f"{p}:n", u + 1))]
    assert not below, f"free-set units at or above their fresh run: {below}"
    row = await deps.pool.fetchrow(_PG_STATE, launch_id)
    assert row is not None
    return StockState(
        alloc=_ints(alloc),
        held=_ints(held),
        confirmed=_ints(conf),
        holds={h: json.loads(v) for h, v in holds.items()},
        cust={int(r): int(m) for r, m in cust.items()},
        free=outside + fresh_units(fresh),
        expiry={h: int(e) for h, e in expiry},
        confirming={h: int(d) for h, d in confirming},
        limit=row["lim"],
        pairs=set(row["pairs"]),
        units={(p, u) for p, u in row["units"]},
        res=row["res"],
        events=row["events"],
    )


def fresh_units(fresh: dict[str, str]) -> list[tuple[str, int]]:
    """The units of every fresh run, as (pair, unit), out of the launch's `fresh` hash.
    Also checks what the scripts rely on: every run has both ends, n <= t, and the
    field "#" is the runs' total."""
    out = []
    total = fresh.pop("#", None)
    for field, value in fresh.items():
        p, end = field.rsplit(":", 1)
        if end == "n":
            first, top = int(value), int(fresh[f"{p}:t"])
            assert first <= top, (p, first, top)
            out += [(p, u) for u in range(first, top)]
        else:
            assert end == "t" and f"{p}:n" in fresh, field
    assert int(total or 0) == len(out), f"fresh '#' says {total}, the runs hold {len(out)}"
    return out


async def free_units(deps: Deps, launch_id: str) -> list[tuple[str, int]]:
    """Every free unit of the launch as (pair, unit): the free set and the fresh runs."""
    return (await read_stock(deps, launch_id)).free


def check_stock(s: StockState) -> None:
    holds, live = s.holds, s.live
    for r in s.res:
        h = holds.get(r["hold_id"])
        if h is not None:  # in flight: the hold must be confirming, and the same claim
            assert r in live, f"reservation {r} is over, yet its hold is still in Redis: {h}"
            claim = (int(h["r"]), f"{h['s']}:{h['k']}", h["u"], h["l"], h["st"])
            assert claim == (r["reg"], r["pair"], r["unit_no"], r["slot"], "confirming")
    settled = [r for r in live if r["hold_id"] not in holds]
    assert set(s.expiry) == {i for i, h in holds.items() if h["st"] == "held"}
    assert set(s.confirming) == {i for i, h in holds.items() if h["st"] == "confirming"}
    # 1 (and 6): per (store, sku), every unit is exactly one of free, held, confirmed.
    pg_units = Counter(p for p, _ in s.units)
    free = Counter(p for p, _ in s.free)
    assert set(s.alloc) == s.pairs
    for p in s.pairs:
        alloc, held, conf = s.alloc[p], s.held.get(p, 0), s.confirmed.get(p, 0)
        assert min(free[p], held, conf) >= 0, (p, free[p], held, conf)
        assert free[p] + held + conf == alloc == pg_units[p], (p, free[p], held, conf, alloc)
        assert held == sum(1 for h in holds.values() if f"{h['s']}:{h['k']}" == p), p
        assert conf == sum(1 for r in settled if r["pair"] == p), p
        assert sum(1 for r in live if r["pair"] == p) <= pg_units[p], p
    places = list(s.free) + [(f"{h['s']}:{h['k']}", h["u"]) for h in holds.values()]
    places += [(r["pair"], r["unit_no"]) for r in settled]
    assert len(places) == len(set(places)), f"a unit is in two places at once: {places}"
    assert set(places) == s.units
    # 2: per registration, holds + confirmed ≤ limit; the slot bitmask says exactly which.
    regs = {int(h["r"]) for h in holds.values()} | {r["reg"] for r in live}
    assert set(s.cust) <= regs
    for reg in regs:
        slots = [h["l"] for h in holds.values() if int(h["r"]) == reg]
        slots += [r["slot"] for r in settled if r["reg"] == reg]
        assert len(slots) == len(set(slots)) <= s.limit, (reg, slots)
        assert all(0 <= slot < s.limit for slot in slots), (reg, slots)
        assert s.cust.get(reg, 0) == sum(1 << slot for slot in slots), (reg, slots)
        assert sum(1 for r in live if r["reg"] == reg) <= s.limit
    # 3: every reservation has a valid code, codes are unique; ended ones hold nothing.
    codes = [r["code"] for r in s.res]
    assert len(codes) == len(set(codes)) and all(normalize_code(c) == c for c in codes)
    assert all(r["unit_no"] is None and r["slot"] is None for r in s.res if r not in live)
