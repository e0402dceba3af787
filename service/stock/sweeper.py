"""Background tidy-up, run in every process; an advisory lock lets one sweep at a time.
Beside it, each process moves launches at their timings as they come.

Correctness never waits for it: scripts expire holds as they touch a launch, and
requests apply their own outbox rows. The sweeper catches what was left behind:
idle launches' expired holds, confirms (and moves) whose process died, units Redis
offers that Postgres has sold (a launch marked suspect), outbox rows whose
apply failed, hold events to copy into the audit trail, queue places to keep,
sold out as the stock says, reservations whose pickup
window ended uncollected (no-shows), and webhooks to deliver.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from service.admin.launches import advance_due, follow_stock, next_timing_ms
from service.deps import Deps
from service.infra.tasks import background
from service.notify.schedule import run_schedules
from service.notify.sender import send_pending
from service.pickup.windows import release_no_shows
from service.queue.places import drain_places
from service.stock.hold_log import drain_events
from service.stock.holds import expire
from service.stock.mend import mend_if_suspect
from service.stock.outbox import apply_pending
from service.stock.reconciler import reconcile
from service.webhooks.delivery import deliver_due
from service.webhooks.fanout import fan_out

log = logging.getLogger(__name__)

_SWEEP_LOCK = 0x6664737765657000  # "fdsweep"
ACTIVE_STATES = ["checkin_open", "selling", "sold_out", "closed", "pickup"]


async def sweep_once(deps: Deps) -> None:
    launches = await deps.pool.fetch("SELECT id FROM launches WHERE state = ANY($1)", ACTIVE_STATES)
    for row in launches:
        launch_id = row["id"]
        await expire(deps, launch_id)
        await reconcile(deps, launch_id)
        await mend_if_suspect(deps, launch_id)
        await drain_events(deps, launch_id)
        await drain_places(deps, launch_id)
    await release_no_shows(deps)
    await apply_pending(deps)
    await follow_stock(deps)
    await run_schedules(deps)
    if deps.settings.notify:
        await send_pending(deps)
    await fan_out(deps)
    await deliver_due(deps)


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


TIMINGS_RECHECK_S = 1.0
"""The longest the timings loop sleeps: a timing set or edited meanwhile is seen."""


async def follow_timings(deps: Deps) -> None:
    """Move launches as their timings come, waking at the next one: the sale starts (and
    admission begins) at its time, not when a sweep, busy with the rest, gets to it.
    Every process runs this; a launch moves once (its row is locked to move it)."""
    while True:
        wait = TIMINGS_RECHECK_S
        try:
            await advance_due(deps)
            due = await next_timing_ms(deps)
            if due is not None:
                wait = min(wait, max(0.01, (due - deps.clock.now_ms()) / 1000))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("moving launches at their timings failed; next try in %.1fs", wait)
        await asyncio.sleep(wait)


@contextlib.asynccontextmanager
async def running(deps: Deps) -> AsyncIterator[None]:
    async with (
        background(follow_timings(deps), "fairdrop-timings"),
        background(run_forever(deps), "fairdrop-sweeper"),
    ):
        yield
