"""`rebuild`: seconds to rebuild a launch's stock in Redis from Postgres, beside the
Postgres read alone in the same run, and the Redis bytes its stock takes beside what a
free-set member per unit (the layout before fresh runs) takes, built in the same run."""

from __future__ import annotations

import argparse
import secrets
import statistics
import time
from pathlib import Path
from typing import Any

from _env import fresh_space, open_deps, say
from _seed import SKU, STORE, seed_launch

from service.infra.keys import unit_member
from service.infra.settings import Settings
from service.stock import rebuild

_STOCK_KEYS = ("free", "fresh", "allocated", "held", "confirmed")


async def bench_rebuild(base: Settings, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    n = args.units
    async with fresh_space(base) as settings, open_deps(settings) as deps:
        launch_id = f"bench-{secrets.token_hex(3)}"
        began = time.perf_counter()
        await seed_launch(deps, launch_id, units=n, shoppers=100, limit=1, hold_seconds=3600)
        await deps.pool.execute("ANALYZE units")  # as autovacuum would, after a bulk load
        say(f"seeded {launch_id}: {n:,} units ({time.perf_counter() - began:.1f}s)")
        reads, rebuilds = [], []
        for round_no in range(args.rounds):
            began = time.perf_counter()
            rows = await deps.pool.fetch(rebuild._STOCK, launch_id)
            reads.append(time.perf_counter() - began)
            began = time.perf_counter()
            report = await rebuild.rebuild(deps, launch_id)
            rebuilds.append(time.perf_counter() - began)
            say(f"round {round_no}: read {reads[-1]:.2f}s, rebuild {rebuilds[-1]:.2f}s")
        assert report.available == n and sum(len(r["free"]) for r in rows) == n
        keys = deps.keys(launch_id)
        stock_bytes = 0
        for name in _STOCK_KEYS:
            stock_bytes += int(await deps.redis.memory_usage(keys.key(name), samples=0) or 0)
        # The same free units as a member each, in a scratch key of this run's prefix.
        scratch = keys.key("bench-members")
        for start in range(0, n, 10_000):
            members = {unit_member(STORE, SKU, u): 0 for u in range(start, min(n, start + 10_000))}
            await deps.redis.zadd(scratch, members)
        member_bytes = int(await deps.redis.memory_usage(scratch, samples=0) or 0)
        await deps.redis.delete(scratch)
    read_s, rebuild_s = statistics.median(reads), statistics.median(rebuilds)
    return {
        "bench": "rebuild",
        "ratio": round(read_s / rebuild_s, 3),
        "ratio_means": "the Postgres read alone ÷ the whole rebuild (1.0: loading Redis is free)",
        "units": n,
        "rebuild_s": round(rebuild_s, 3),
        "read_s": round(read_s, 3),
        "rounds": {
            "rebuild_s": [round(s, 3) for s in rebuilds],
            "read_s": [round(s, 3) for s in reads],
        },
        "redis_stock_bytes": stock_bytes,
        "redis_bytes_as_members": member_bytes,
        "redis_bytes_per_unit": round(stock_bytes / n, 4),
        "redis_bytes_per_unit_as_members": round(member_bytes / n, 1),
    }
