"""Background tidy-up, run in every process; an advisory lock lets one sweep at a time.

Correctness never waits for it: scripts expire holds as they touch a launch, and
requests apply their own outbox rows. The sweeper catches what was left behind:
idle launches' expired holds, confirms (and moves) whose process died, outbox rows whose
apply failed, hold events to copy into the audit trail, queue places to keep,
scheduled transitions, sold out as the stock says, and reservations whose pickup
window ended uncollected (no-shows).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import msgspec

from service.admin.launches import advance_due, follow_stock
from service.deps import Deps
from service.infra.db import Conn
from service.infra.drain import drain_list
from service.infra.tasks import background
from service.notify.schedule import run_schedules
from service.notify.sender import send_pending
from service.pickup.windows import release_no_shows
from service.queue.places import drain_places
from service.stock.confirm import reconcile
from service.stock.holds import expire
from service.stock.outbox import apply_pending

log = logging.getLogger(__name__)

_SWEEP_LOCK = 0x6664737765657000  # "fdsweep"
ACTIVE_STATES = ["checkin_open", "selling", "sold_out", "closed", "pickup"]


class HoldEvent(msgspec.Struct, frozen=True):
    """One line of a launch's hold event log (written by the scripts' `log`)."""

    kind: str
    hold: str
    reg: str
    store: str
    sku: str
    at_ms: int


def parse_hold_event(line: str) -> HoldEvent:
    kind, hold, reg, store, sku, at = line.split("|")
    return HoldEvent(kind, hold, reg, store, sku, int(at))


async def hold_events(deps: Deps, launch_id: str, count: int = -1) -> list[HoldEvent]:
    """The oldest `count` (-1: all) hold events not yet drained."""
    last = count - 1 if count > 0 else -1
    lines = await deps.redis.lrange(deps.keys(launch_id).evlog, 0, last)
    return [parse_hold_event(str(line)) for line in lines]


async def drain_events(deps: Deps, launch_id: str, batch: int = 500, most: int = 100_000) -> int:
    """Copy hold events from the launch's Redis log into the audit trail, then trim them
    (`service/infra/drain.py`); a line copied twice is kept once (`source_id`)."""

    async def store(con: Conn, lines: list[str]) -> None:
        rows = [
            (
                launch_id,
                f"registration:{e.reg}",
                "hold." + e.kind,
                f"registration:{e.reg}",
                {"hold": e.hold, "store": e.store, "sku": e.sku, "at_ms": e.at_ms},
                f"{launch_id}:{e.hold}:{e.kind}:{e.at_ms}",
            )
            for e in map(parse_hold_event, lines)
        ]
        await con.executemany(
            "INSERT INTO events (launch_id, actor, channel, kind, subject, data, source_id)"
            " VALUES ($1, $2, 'system', $3, $4, $5, $6) ON CONFLICT (source_id) DO NOTHING",
            rows,
        )

    return await drain_list(deps, deps.keys(launch_id).evlog, store, batch=batch, most=most)


async def sweep_once(deps: Deps) -> None:
    await advance_due(deps)
    launches = await deps.pool.fetch("SELECT id FROM launches WHERE state = ANY($1)", ACTIVE_STATES)
    for row in launches:
        launch_id = row["id"]
        await expire(deps, launch_id)
        await reconcile(deps, launch_id)
        await drain_events(deps, launch_id)
        await drain_places(deps, launch_id)
    await release_no_shows(deps)
    await apply_pending(deps)
    await follow_stock(deps)
    await run_schedules(deps)
    if deps.settings.notify:
        await send_pending(deps)


async def run_forever(deps: Deps) -> None:
    interval = deps.settings.sweep_interval_seconds
    while True:
        try:
            async with deps.pool.acquire() as con:
                if await con.fetchval("SELECT pg_try_advisory_lock($1)", _SWEEP_LOCK):
                    try:
                        await sweep_once(deps)
                    finally:
                        await con.execute("SELECT pg_advisory_unlock($1)", _SWEEP_LOCK)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sweep failed; next try in %.1fs", interval)
        await asyncio.sleep(interval)


def running(deps: Deps) -> contextlib.AbstractAsyncContextManager[None]:
    return background(run_forever(deps), "fairdrop-sweeper")
