"""The operations dashboard's numbers for one launch, from where each one lives:
registrations and pickups from Postgres, the queue from the worker's admission
snapshot, stock from Redis."""

from __future__ import annotations

import msgspec

from service.admin import launches
from service.admin.models import Launch
from service.deps import Deps
from service.queue.eta import Pace, eta_seconds
from service.queue.status import Snapshot
from service.stock.counts import redis_counts
from service.stock.rebuild import ensure_loaded
from service.store import queue as qstore
from service.webhooks.endpoints import disabled_endpoints
from service.webhooks.models import DisabledEndpoint


class StockRow(msgspec.Struct, frozen=True, kw_only=True):
    store_id: str
    store_name: str
    sku_id: str
    sku_name: str
    allocated: int
    available: int
    held: int
    confirmed: int
    """Live reservations (confirmed, not yet collected) as Redis counts them."""
    collected: int


class Dashboard(msgspec.Struct, frozen=True, kw_only=True):
    launch: Launch
    at_ms: int
    registered: int
    verified: int
    checked_in: int
    queue_length: int
    """Drawn or queued places (0 before the draw)."""
    admitted: int
    waiting: int
    active: int
    """Admitted and not yet done: choosing, or holding."""
    lapsed: int
    held: int
    confirmed: int
    collected: int
    available: int
    sold_out: bool
    admit_rate: float
    """What the operator set (admissions per second)."""
    measured_rate: float | None
    """What admission achieves recently (as the waiting room measures it), None until
    measured."""
    eta_last_seconds: float | None
    """When the last in line is admitted at the measured rate."""
    held_back: list[str]
    """What holds admission below the set rate right now, in plain words (empty:
    nothing does)."""
    stock: list[StockRow]
    webhooks_disabled: list[DisabledEndpoint] = msgspec.field(default_factory=list)
    """Webhook endpoints that receive nothing until an operator enables them again, and why."""


def held_back(snap: Snapshot | None, launch: Launch) -> list[str]:
    """What keeps admission below the operator's rate, read off the admission snapshot."""
    if snap is None or snap.phase != "drawn":
        return []
    # The state and the pause are Postgres's; the snapshot may be a refresh behind them.
    if launch.paused:
        return ["The sale is paused: nobody new is admitted until it resumes."]
    if launch.state == "sold_out":
        return [
            "Sold out: nothing is free or held, so nobody is admitted. Units that come back"
            " (a cancel, a hold that runs out) re-open admission."
        ]
    if launch.state != "selling":
        return ["The sale is closed, so nobody is admitted."]
    if not snap.admitting:
        return []  # resumed or re-opened a moment ago: the next refresh sees it
    if snap.qlen == 0:
        return ["Nobody is in the queue yet: admission waits for people to check in."]
    if snap.admitted >= snap.qlen:
        return [
            f"The queue is empty: all {snap.qlen:,} in it have been admitted, so admission"
            " waits for people to check in."
        ]
    out = []
    if snap.active >= snap.cap:
        out.append(
            f"The active cap is reached: {snap.active:,} of {snap.cap:,} admitted shoppers"
            " are choosing or holding, and the next are let in as they finish."
        )
    if snap.free - snap.choosing <= 0:
        out.append(
            f"Nothing free to sell: the {snap.free:,} free units are all offered to admitted"
            " shoppers or held. More are let in as holds are confirmed, run out or come back."
        )
    if out and snap.choosing:
        out.append(
            f"{snap.choosing:,} admitted shoppers have not held yet; a turn lapses"
            f" {snap.window_ms // 1000} s after it starts if unused, and its place goes to"
            f" the next in line ({snap.lapsed:,} lapsed so far)."
        )
    return out


async def dashboard(
    deps: Deps, launch_id: str, snap: Snapshot | None, pace: Pace | None = None
) -> Dashboard:
    launch = await launches.get_launch(deps, launch_id)
    await ensure_loaded(deps, launch_id)
    regs = await deps.pool.fetchrow(
        "SELECT count(*) AS registered, count(verified_at) AS verified"
        " FROM registrations WHERE launch_id = $1",
        launch_id,
    )
    assert regs is not None  # an aggregate always returns its row
    checked_in = await qstore.checked_in(deps.scripts, deps.keys(launch_id))
    stock = await _stock(deps, launch_id)
    drawn = snap is not None and snap.phase == "drawn"
    qlen = snap.qlen if snap is not None and drawn else 0
    admitted = snap.admitted if snap is not None and drawn else 0
    waiting = max(0, qlen - admitted)
    rate = None if pace is None else round(pace.per_second, 2)
    last = eta_seconds(pace, qlen - 1, deps.clock.now_ms()) if waiting else None
    return Dashboard(
        launch=launch,
        at_ms=deps.clock.now_ms(),
        registered=regs["registered"],
        verified=regs["verified"],
        checked_in=checked_in,
        queue_length=qlen,
        admitted=admitted,
        waiting=waiting,
        active=snap.active if snap is not None else 0,
        lapsed=snap.lapsed if snap is not None else 0,
        held=sum(s.held for s in stock),
        confirmed=sum(s.confirmed for s in stock),
        collected=sum(s.collected for s in stock),
        available=sum(s.available for s in stock),
        sold_out=snap.sold_out if snap is not None else False,
        admit_rate=launch.admit_rate,
        measured_rate=rate,
        eta_last_seconds=last,
        held_back=held_back(snap, launch),
        stock=stock,
        webhooks_disabled=await disabled_endpoints(deps, launch_id),
    )


async def _stock(deps: Deps, launch_id: str) -> list[StockRow]:
    """Each store and SKU's counts as Redis keeps them, with names and pickups beside."""
    collected = {
        (r["store_id"], r["sku_id"]): r["n"]
        for r in await deps.pool.fetch(
            "SELECT store_id, sku_id, count(*) AS n FROM reservations"
            " WHERE launch_id = $1 AND status = 'collected' GROUP BY store_id, sku_id",
            launch_id,
        )
    }
    stores = {s.id: s.name for s in await launches.list_items(deps, launch_id, "stores")}
    skus = {s.id: s.name for s in await launches.list_items(deps, launch_id, "skus")}
    return [
        StockRow(
            store_id=c.store_id,
            store_name=stores.get(c.store_id, c.store_id),
            sku_id=c.sku_id,
            sku_name=skus.get(c.sku_id, c.sku_id),
            allocated=c.allocated,
            available=c.available,
            held=c.held,
            confirmed=c.confirmed,
            collected=collected.get((c.store_id, c.sku_id), 0),
        )
        for c in await redis_counts(deps, launch_id)
    ]
