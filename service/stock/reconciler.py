"""Settling holds left *confirming* past their deadline (`FAIRDROP_CONFIRM_DEADLINE`).

A confirm's hold stays confirming when its process died between the steps, when
Postgres did not answer, or when Redis missed `confirm_end`. The reconciler finishes
such a confirm rather than undoing it: it runs step 2 again (`confirm.record`, the
idempotent insert keyed by hold id), then `confirm_end`. If the first insert is still
in flight (a frozen Postgres reading it late), the unique index on the hold id makes one
of the two commit and the other find it; either way the hold ends confirmed, and no unit
goes back to stock while a reservation for it may yet commit. Postgres refusing the
insert (the unit or slot taken, the unit gone) settles the hold as `confirm_abort` says.

A move's hold (`move_begin`) cannot be redone: its move commits or not in one
transaction under the launch's shared lock, so the reconciler asks Postgres under the
exclusive lock, when no move can be in flight, and gives the unit back only if the move
is not there.
"""

from __future__ import annotations

import logging

from service import errors
from service.deps import Deps
from service.infra.outages import outage
from service.stock.confirm import end, record
from service.store import stock as store
from service.store.stock import Begun, Overdue

log = logging.getLogger(__name__)

_BATCH = 100  # holds settled per launch per sweep


async def reconcile(deps: Deps, launch_id: str) -> dict[str, int]:
    """Settle the launch's holds confirming past their deadline. Returns how many were
    confirmed, aborted (refused by Postgres, or a move that never committed) and left
    for the next sweep (Postgres or Redis did not answer)."""
    overdue = await store.confirm_overdue(
        deps.scripts, deps.keys(launch_id), now_ms=deps.clock.now_ms(), most=_BATCH
    )
    settled = {"confirmed": 0, "aborted": 0, "left": 0}
    for hold in overdue:
        try:
            if hold.slot < 0:
                outcome = await _settle_move(deps, launch_id, hold.hold_id)
            else:
                outcome = await _finish(deps, launch_id, hold)
        except Exception as exc:
            if outage(exc) is None:
                raise
            outcome = "left"  # Postgres or Redis out: the next sweep tries again
        settled[outcome] += 1
    if settled["left"]:
        log.warning(
            "reconciler: %d confirming hold(s) of %s wait for Postgres", settled["left"], launch_id
        )
    return settled


async def _finish(deps: Deps, launch_id: str, hold: Overdue) -> str:
    begun = Begun(hold.store_id, hold.sku_id, hold.unit_no, hold.slot)
    try:
        await record(deps, launch_id, hold.registration_id, hold.hold_id, begun, "system", "system")
    except (errors.ConfirmRefused, errors.LimitReached):
        return "aborted"  # `record` settled it in Redis as Postgres said
    await end(deps, [(launch_id, hold.hold_id)])
    return "confirmed"


async def _settle_move(deps: Deps, launch_id: str, hold_id: str) -> str:
    keys, now = deps.keys(launch_id), deps.clock.now_ms()
    async with deps.pool.acquire() as con, con.transaction():
        await con.execute("SELECT pg_advisory_xact_lock($1)", deps.launch_lock(launch_id))
        moved = await con.fetchval(
            "SELECT 1 FROM reservations WHERE launch_id = $1 AND hold_id = $2", launch_id, hold_id
        )
        if moved:
            await store.confirm_end(deps.scripts, keys, now_ms=now, hold_ids=[hold_id])
            return "confirmed"
        await store.confirm_abort(deps.scripts, keys, now_ms=now, hold_id=hold_id, why="retry")
        return "aborted"
