"""The background runner: one lock per job and per schema, each job on its own time."""

from __future__ import annotations

import asyncio

import asyncpg
import msgspec
import pytest

from service.deps import Deps
from service.infra import db, scheduler
from service.infra.scheduler import Job
from service.infra.settings import Settings


class Runs:
    """Counts a job's runs; `gate` (if set) keeps each run going until it is opened."""

    def __init__(self, gate: asyncio.Event | None = None, fail: bool = False) -> None:
        self.started = 0
        self.gate, self.fail = gate, fail
        self.running = asyncio.Event()

    async def __call__(self) -> None:
        self.started += 1
        self.running.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise RuntimeError("this job always fails")


async def _until(check: object, what: str) -> None:
    for _ in range(400):  # a bound on the wall clock, not a timing
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.025)
    raise AssertionError(what)


async def test_a_job_another_process_runs_is_skipped_while_other_jobs_go_on(deps: Deps) -> None:
    held, free = Runs(), Runs()
    jobs = [Job("held", 0.05, held), Job("free", 0.05, free)]
    async with deps.pool.acquire() as other_process:
        assert await other_process.fetchval(scheduler._LOCK, "held")
        async with scheduler.running(deps.pool, jobs):
            await _until(lambda: free.started >= 3, "the free job never ran three times")
        await other_process.execute(scheduler._UNLOCK, "held")
    assert held.started == 0
    async with scheduler.running(deps.pool, jobs):
        await _until(lambda: held.started >= 1, "the job never ran once its lock was free")


async def test_the_same_job_runs_at_once_in_two_schemas(settings: Settings) -> None:
    """Tenants in separate schemas never take turns: each has its own lock."""
    other = f"{settings.db_schema}_b"
    assert settings.database_url is not None
    con = await asyncpg.connect(settings.database_url)
    await con.execute(f'CREATE SCHEMA "{other}"')
    gate = asyncio.Event()
    ours, theirs = Runs(gate), Runs(gate)
    pool = await db.create_pool(settings)
    their_pool = await db.create_pool(msgspec.structs.replace(settings, db_schema=other))
    try:
        async with (
            scheduler.running(pool, [Job("sweep", 0.05, ours)]),
            scheduler.running(their_pool, [Job("sweep", 0.05, theirs)]),
        ):
            await asyncio.wait_for(
                asyncio.gather(ours.running.wait(), theirs.running.wait()), timeout=10
            )
            gate.set()
    finally:
        await pool.close()
        await their_pool.close()
        await con.execute(f'DROP SCHEMA "{other}" CASCADE')
        await con.close()


async def test_a_failing_job_runs_again_and_does_not_stop_the_others(deps: Deps) -> None:
    failing, fine = Runs(fail=True), Runs()
    jobs = [Job("failing", 0.05, failing), Job("fine", 0.05, fine), Job("own", 0.05, fine, False)]
    async with scheduler.running(deps.pool, jobs):
        await _until(lambda: failing.started >= 3 and fine.started >= 6, "jobs stopped")


@pytest.mark.parametrize("exclusive", [True, False])
async def test_a_job_asking_to_run_sooner_runs_sooner(deps: Deps, exclusive: bool) -> None:
    runs = 0

    async def soon() -> float:
        nonlocal runs
        runs += 1
        return 0.01

    async with scheduler.running(deps.pool, [Job("soon", 3600.0, soon, exclusive)]):
        await _until(lambda: runs >= 5, "the job waited its whole interval")
