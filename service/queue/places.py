"""Queue places given after the draw, kept in Postgres so a lost Redis gives them back.

The drawn places are the draw's stored order; every place given later (a late
arrival, every arrival of a fifo launch, one checked in while the draw ran) is a line
the script appends to the launch's `placelog`, which the sweeper copies here about a
second behind. `restore` writes them back before the queue reopens. Every first
check-in, a pre-queue one too (rank -1: the draw places it), is a line there as well,
and becomes a `queue.checked_in` event in the audit trail.
"""

from __future__ import annotations

from service import events, subjects
from service.deps import Deps
from service.infra.db import Conn, allow_long
from service.infra.keys import LaunchKeys
from service.store import logs
from service.store import queue as qstore

_CHUNK = 10_000


async def drain_places(deps: Deps, launch_id: str, batch: int = 5_000, most: int = 100_000) -> int:
    """Copy the launch's newly given places into `queue_places`."""

    async def store(con: Conn, lines: list[str]) -> None:
        regs, ranks, checked_in = [], [], []
        for line in lines:
            reg, rank = line.split("|")
            if int(rank) >= 0:
                regs.append(int(reg))
                ranks.append(int(rank))
            who = subjects.registration(reg)
            data = {"rank": int(rank) if int(rank) >= 0 else None}
            checked_in.append((who, who, data, f"{launch_id}:checked_in:{reg}"))
        await con.execute(
            "INSERT INTO queue_places (launch_id, registration_id, rank)"
            " SELECT $1, * FROM unnest($2::bigint[], $3::int[]) ON CONFLICT DO NOTHING",
            launch_id,
            regs,
            ranks,
        )
        await events.record_many(
            con, launch_id=launch_id, channel="system", kind="queue.checked_in", rows=checked_in
        )

    return await logs.drain_place_log(
        deps.scripts, deps.pool, deps.keys(launch_id), store, batch=batch, most=most
    )


async def restore_places(deps: Deps, keys: LaunchKeys, launch_id: str) -> int:
    """Write the kept places back to Redis (place and its holder both ways). Returns the
    queue length they imply (highest rank + 1, 0 if none)."""
    async with deps.pool.acquire() as con, con.transaction():
        await allow_long(con, deps.settings)  # a place a shopper: up to a million rows
        rows = await con.fetch(
            "SELECT registration_id, rank FROM queue_places WHERE launch_id = $1 ORDER BY rank",
            launch_id,
        )
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        await qstore.write_places(deps.scripts, keys, [(r[0], r[1]) for r in chunk])
    return rows[-1][1] + 1 if rows else 0
