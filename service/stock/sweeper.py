"""Background tidy-up, run in every process; an advisory lock lets one sweep at a time.

Correctness never waits for it: scripts expire holds as they touch a launch, and
requests apply their own outbox rows. The sweeper catches what was left behind:
idle launches' expired holds, confirms (and moves) whose process died, outbox rows whose
apply failed, hold events to copy into the audit trail, queue places to keep,
scheduled transitions, sold out as the stock says, reservations whose pickup
window ended uncollected (no-shows), and webhooks to deliver.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from service.admin.launches import advance_due, follow_stock
from service.deps import Deps
from service.infra.tasks import background
from service.notify.schedule import run_schedules
from service.notify.sender import send_pending
from service.pickup.windows import release_no_shows
from service.queue.places import drain_places
from service.stock.confirm import reconcile
from service.stock.hold_log import drain_events
from service.stock.holds import expire
from service.stock.outbox import apply_pending
from service.webhooks.delivery import deliver_due
from service.webhooks.fanout import fan_out

log = logging.getLogger(__name__)

_SWEEP_LOCK = 0x6664737765657000  # "fdsweep"
ACTIVE_STATES = ["checkin_open", "selling", "sold_out", "closed", "pickup"]


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


def running(deps: Deps) -> contextlib.AbstractAsyncContextManager[None]:
    return background(run_forever(deps), "fairdrop-sweeper")
