"""One runner for background work: a table of jobs, each with its interval.

A job is *exclusive* (one process of a schema runs it at a time, under an advisory lock
named after the schema and the job, so tenants in separate schemas never take turns and
two jobs never wait for each other) or runs in every process (what each process keeps
in memory, e.g. its view of the queues). Exclusive jobs take turns in one lane, one
pool connection held for their locks; every other job has a task of its own, so a slow
sweep never delays a queue refresh.

A job's `run` may return how soon it wants to run again (a launch timing due in half a
second), never later than `every`. A failure is logged and the job runs again at its
next time; correctness never waits for a job (see docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from service.infra import logs, metrics
from service.infra.tasks import background

log = logging.getLogger(__name__)

_LOCK = "SELECT pg_try_advisory_lock(hashtext(current_schema() || ':fairdrop-job:' || $1))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtext(current_schema() || ':fairdrop-job:' || $1))"
_SOONEST_S = 0.01


Run = Callable[[], Awaitable[float | None]]
"""One run of a job; may return how many seconds until it should run again, if sooner."""


@dataclass(frozen=True)
class Job:
    name: str
    every: float
    """Seconds between runs (the longest wait, if a run asks for sooner)."""
    run: Run
    exclusive: bool = True
    """One process of the schema at a time; False: every process runs it."""


def _next_wait(job: Job, sooner: float | None) -> float:
    return job.every if sooner is None else min(job.every, max(_SOONEST_S, sooner))


async def _attempt(job: Job) -> float | None:
    """One run, counted (`fairdrop_job_runs_total`) and, with JSON logs, logged: every
    run of an exclusive job, a failed run of any (each process's own jobs run several
    times a second)."""
    began = time.perf_counter()
    try:
        sooner = await job.run()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        metrics.count_job(job.name, failed=True)
        logs.job(job.name, time.perf_counter() - began, exc)
        log.exception("background job %s failed; next try in %.1fs", job.name, job.every)
        return None
    metrics.count_job(job.name, failed=False)
    if job.exclusive:
        logs.job(job.name, time.perf_counter() - began)
    return sooner


async def _own_task(job: Job) -> None:
    while True:
        wait = _next_wait(job, await _attempt(job))
        await asyncio.sleep(wait)


async def run_exclusive(pool: Any, jobs: Sequence[Job], due: dict[str, float]) -> None:
    """Run those of `jobs` due by the loop's clock (all, if `due` is empty) whose lock
    this process gets; `due` is updated with their next times."""
    now = asyncio.get_running_loop().time()
    todo = [job for job in jobs if due.get(job.name, 0.0) <= now]
    if not todo:
        return
    async with pool.acquire() as con:
        for job in todo:
            sooner = None
            if await con.fetchval(_LOCK, job.name):
                try:
                    sooner = await _attempt(job)
                finally:
                    await con.execute(_UNLOCK, job.name)
            due[job.name] = asyncio.get_running_loop().time() + _next_wait(job, sooner)


async def _lane(pool: Any, jobs: Sequence[Job]) -> None:
    due: dict[str, float] = {}
    loop = asyncio.get_running_loop()
    while True:
        try:
            await run_exclusive(pool, jobs, due)
        except asyncio.CancelledError:
            raise
        except Exception:  # Postgres out: no lock to take; try again in a while
            log.exception("background jobs could not take their locks")
            due = {job.name: loop.time() + job.every for job in jobs}
        wake = min(due.values(), default=loop.time() + 1.0)
        await asyncio.sleep(max(_SOONEST_S, wake - loop.time()))


@contextlib.asynccontextmanager
async def running(pool: Any, jobs: Sequence[Job]) -> AsyncIterator[None]:
    """Run `jobs` while the block runs; stop them, for sure, on the way out."""
    lane = [job for job in jobs if job.exclusive]
    async with contextlib.AsyncExitStack() as stack:
        if lane:
            await stack.enter_async_context(background(_lane(pool, lane), "fairdrop-jobs"))
        for job in jobs:
            if not job.exclusive:
                await stack.enter_async_context(background(_own_task(job), f"fairdrop-{job.name}"))
        yield
