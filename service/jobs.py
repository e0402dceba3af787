"""fairdrop's background work, as one table of jobs (run by `service.infra.scheduler`).

Correctness never waits for these: scripts expire holds as they touch a launch, and
requests apply their own outbox rows. The jobs catch what was left behind and move what
nobody's request moves: launches at their timings, each process's view of the queues,
idle launches' expired holds, confirms (and moves) whose process died, units Redis
offers that Postgres has sold (a launch marked suspect), hold events and queue places
to copy into Postgres, outbox rows whose apply failed, sold out as the stock says,
reservations whose pickup window ended uncollected (no-shows), scheduled e-mails and
their sending, and webhooks to fan out and deliver.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from service.admin.launches import advance_due, follow_stock, next_timing_ms
from service.deps import Deps
from service.infra import metrics, scheduler
from service.infra.scheduler import Job, Run
from service.notify.schedule import run_schedules
from service.notify.sender import send_pending
from service.pickup.windows import release_no_shows
from service.queue.places import drain_places
from service.queue.status import LOAD_EVERY_SECONDS, REFRESH_SECONDS, QueueWatch
from service.stock.hold_log import drain_events
from service.stock.holds import expire
from service.stock.mend import mend_if_suspect
from service.stock.outbox import apply_pending
from service.stock.reconciler import reconcile
from service.webhooks.delivery import deliver_due
from service.webhooks.fanout import fan_out

ACTIVE_STATES = ["checkin_open", "selling", "sold_out", "closed", "pickup"]
"""Launches whose holds, confirms and events the per-launch jobs look after."""

TIMINGS_RECHECK_S = 1.0
"""The longest the timings job waits: a timing set or edited meanwhile is seen."""


def _each_launch(deps: Deps, *steps: Callable[[Deps, str], Awaitable[object]]) -> Run:
    async def run() -> None:
        rows = await deps.pool.fetch("SELECT id FROM launches WHERE state = ANY($1)", ACTIVE_STATES)
        for row in rows:
            for step in steps:
                await step(deps, row["id"])

    return run


def _once(work: Callable[[Deps], Awaitable[object]], deps: Deps) -> Run:
    async def run() -> None:
        await work(deps)

    return run


def _timings(deps: Deps) -> Run:
    async def run() -> float | None:
        """The sale starts (and admission begins) at its time, not when a sweep gets to
        it. Every process runs this; a launch moves once (its row is locked to move it)."""
        await advance_due(deps)
        due = await next_timing_ms(deps)
        return None if due is None else (due - deps.clock.now_ms()) / 1000

    return run


def exclusive_jobs(deps: Deps) -> list[Job]:
    """The jobs one process of a schema runs at a time, in the order a sweep runs them."""
    every = deps.settings.sweep_interval_seconds
    jobs = [
        Job("holds", every, _each_launch(deps, expire, reconcile, mend_if_suspect)),
        Job("hold-events", every, _each_launch(deps, drain_events)),
        Job("queue-places", every, _each_launch(deps, drain_places)),
        Job("no-shows", every, _once(release_no_shows, deps)),
        Job("outbox", every, _once(apply_pending, deps)),
        Job("sold-out", every, _once(follow_stock, deps)),
        Job("schedules", every, _once(run_schedules, deps)),
    ]
    if deps.settings.notify:
        jobs.append(Job("mail", every, _once(send_pending, deps)))
    jobs += [
        Job("webhook-fanout", every, _once(fan_out, deps)),
        Job("webhook-delivery", every, _once(deliver_due, deps)),
    ]
    return jobs


def process_jobs(watch: QueueWatch) -> list[Job]:
    """The jobs every process runs: its view of the queues (admission runs with it), and
    writing its metrics where the other workers' scrapes read them."""

    async def lotteries() -> None:
        await watch.move_waiting_lists()

    async def launches() -> None:
        await watch.load_active()

    async def queues() -> None:
        await watch.refresh_all()

    async def counters() -> None:
        await watch.save_counters()

    async def flush_metrics() -> None:
        metrics.flush()

    return [
        Job("metrics", metrics.FLUSH_SECONDS, flush_metrics, exclusive=False),
        Job("active-launches", LOAD_EVERY_SECONDS, launches, exclusive=False),
        Job("queues", REFRESH_SECONDS, queues, exclusive=False),
        Job("waiting-lists", 1.0, lotteries, exclusive=False),
        Job("queue-counters", 5.0, counters, exclusive=False),
    ]


async def sweep_once(deps: Deps) -> None:
    """Run every exclusive job once, in order (as a test or a command would)."""
    await scheduler.run_exclusive(deps.pool, exclusive_jobs(deps), {})


@contextlib.asynccontextmanager
async def running(deps: Deps, watch: QueueWatch, *, sweep: bool) -> AsyncIterator[None]:
    """Every process's queue jobs and, if `sweep` (FAIRDROP_BACKGROUND), the launch timings
    (every process moves launches as their timings come) and the exclusive jobs."""
    jobs = process_jobs(watch)
    if sweep:
        jobs += [Job("launch-timings", TIMINGS_RECHECK_S, _timings(deps), exclusive=False)]
        jobs += exclusive_jobs(deps)
    async with scheduler.running(deps.pool, jobs):
        yield
