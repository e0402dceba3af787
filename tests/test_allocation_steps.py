"""Allocation changes cost in proportion to the change and never hold a launch's lock
for long: they go in steps, each its own short transaction; Postgres keeps each
allocation's size and bounds it; a request's statement times out, long work does not."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from service import errors
from service.admin import allocations
from service.admin.allocations import set_allocation
from service.clock import FakeClock
from service.deps import Deps
from service.infra import db
from service.infra.settings import Settings
from service.stock.rebuild import rebuild
from service.web.app import create_app
from tests.serve import ACTOR, assert_consistent, stocked_launch

L = "steps"


async def _events(deps: Deps, kind: str) -> list[int]:
    rows = await deps.pool.fetch(
        "SELECT data FROM events WHERE kind = $1 ORDER BY id", f"allocation.{kind}"
    )
    return [r["data"]["added" if kind == "raised" else "removed"] for r in rows]


async def _size(deps: Deps) -> int:
    size: int = await deps.pool.fetchval(
        "SELECT allocated FROM allocations WHERE launch_id = $1 AND store_id = 'S1'", L
    )
    return size


async def test_a_change_goes_in_steps_and_redis_keeps_one_run(
    deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(allocations, "STEP", 7)
    await stocked_launch(deps, L, units=0, registrations=0)
    await set_allocation(deps, L, "S1", "K1", 30, **ACTOR)
    assert await _events(deps, "raised") == [7, 7, 7, 7, 2], "a transaction a step"
    keys = deps.keys(L)
    assert await deps.redis.zcard(keys.free) == 0, "30 units, one run: no member a unit"
    assert await deps.redis.hmget(keys.fresh, ["S1:K1:n", "S1:K1:t"]) == ["0", "30"]
    await set_allocation(deps, L, "S1", "K1", 31, **ACTOR)
    assert (await _events(deps, "raised"))[-1] == 1, "one more unit: one small step"
    await set_allocation(deps, L, "S1", "K1", 12, **ACTOR)
    assert await _events(deps, "lowered") == [7, 7, 5]
    assert await _size(deps) == 12
    assert (await assert_consistent(deps, L))["S1:K1"] == (12, 12, 0, 0)
    payloads = await deps.pool.fetch("SELECT payload FROM outbox WHERE topic = 'add_units'")
    assert all("units" not in p["payload"] for p in payloads), "a run, never a list of units"
    await rebuild(deps, L)
    assert (await assert_consistent(deps, L))["S1:K1"] == (12, 12, 0, 0)


async def test_a_rebuild_waits_one_step_not_the_whole_change(
    deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(allocations, "STEP", 2_000)
    await stocked_launch(deps, L, units=0, registrations=0)
    done: list[str] = []

    async def noted(name: str, work: Awaitable[object]) -> None:
        await work
        done.append(name)

    change = asyncio.ensure_future(
        noted("change", set_allocation(deps, L, "S1", "K1", 60_000, **ACTOR))
    )
    for _ in range(2_000):  # until the change's first step has committed
        if await _events(deps, "raised") or change.done():
            break
        await asyncio.sleep(0.005)
    assert not change.done(), "the change had 30 steps to go"
    await noted("rebuild", rebuild(deps, L))
    await change
    assert done == ["rebuild", "change"], "the rebuild ran between two steps"
    assert await _size(deps) == 60_000
    assert (await assert_consistent(deps, L))["S1:K1"] == (60_000, 60_000, 0, 0)


async def test_a_second_change_of_one_allocation_meanwhile_is_refused(
    deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(allocations, "STEP", 2_000)
    await stocked_launch(deps, L, units=0, registrations=0)
    first = asyncio.ensure_future(set_allocation(deps, L, "S1", "K1", 40_000, **ACTOR))
    for _ in range(2_000):
        if await _events(deps, "raised") or first.done():
            break
        await asyncio.sleep(0.005)
    assert not first.done()
    with pytest.raises(errors.Conflict, match="under way"):
        await set_allocation(deps, L, "S1", "K1", 10, **ACTOR)
    await first
    assert await _size(deps) == 40_000, "never added twice"
    await set_allocation(deps, L, "S1", "K1", 10, **ACTOR)  # its turn now
    assert (await assert_consistent(deps, L))["S1:K1"] == (10, 10, 0, 0)


async def test_postgres_keeps_and_bounds_each_allocation(deps: Deps) -> None:
    await stocked_launch(deps, L, units=3, registrations=0)
    assert await _size(deps) == 3
    with pytest.raises(errors.InvalidField) as refused:
        await set_allocation(deps, L, "S1", "K1", 1_000_001, **ACTOR)
    assert refused.value.extra["fields"] == ["allocated"]
    async with deps.pool.acquire() as con:
        await con.execute(
            "INSERT INTO units SELECT $1, 'S1', 'K1', g FROM generate_series(3, 9) g", L
        )
        assert await _size(deps) == 10, "counted by Postgres, whoever inserts"
        await con.execute("DELETE FROM units WHERE launch_id = $1 AND unit_no >= 5", L)
        assert await _size(deps) == 5
        with pytest.raises(asyncpg.CheckViolationError):
            await con.execute("UPDATE allocations SET allocated = 1000001 WHERE launch_id = $1", L)
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await con.execute("INSERT INTO units VALUES ($1, 'NOPE', 'K1', 0)", L)
        await con.execute("DELETE FROM stores WHERE launch_id = $1", L)
        assert await con.fetchval("SELECT count(*) FROM units WHERE launch_id = $1", L) == 0


async def test_a_request_statement_times_out_and_long_work_does_not(
    settings: Settings, clock: FakeClock, admin_key: str
) -> None:
    quick = msgspec.structs.replace(
        settings, statement_timeout_seconds=0.2, long_statement_timeout_seconds=30
    )
    pool = await db.create_pool(quick, min_size=1, max_size=2)
    try:
        with pytest.raises(asyncpg.QueryCanceledError):
            await pool.execute("SELECT pg_sleep(2)")
        async with pool.acquire() as con, con.transaction():
            await db.allow_long(con, quick)
            await con.execute("SELECT pg_sleep(0.4)")
    finally:
        await pool.close()


async def test_a_request_waiting_on_a_lock_is_a_503_not_a_hang(
    deps: Deps, settings: Settings, clock: FakeClock, admin_key: str
) -> None:
    await stocked_launch(deps, L, units=1, registrations=0)
    quick = msgspec.structs.replace(settings, statement_timeout_seconds=0.3, background=False)
    assert settings.database_url is not None
    holder = await asyncpg.connect(settings.database_url)  # a rebuild that never ends
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", deps.launch_lock(L))
        async with AsyncTestClient(create_app(quick, clock)) as client:
            r = await asyncio.wait_for(
                client.put(
                    f"/api/admin/launches/{L}/allocations/S1/K1",
                    json={"allocated": 5},
                    headers={"Authorization": f"Bearer {admin_key}"},
                ),
                timeout=30,
            )
        assert r.status_code == 503, r.text
        assert r.json()["type"].endswith("/unavailable") and r.headers["retry-after"]
    finally:
        await holder.close()
    assert await _size(deps) == 1, "nothing changed"


async def test_a_launch_locked_in_one_schema_does_not_hold_up_its_namesake_in_another(
    settings: Settings, deps: Deps, clock: FakeClock
) -> None:
    """Tenants in separate schemas may use the same launch id: a rebuild of one (its
    launch's exclusive lock held here for good) never stalls the other's."""
    other_schema = f"{settings.db_schema}_b"
    assert settings.database_url is not None
    await db.migrate_url(settings.database_url, other_schema)
    other = msgspec.structs.replace(
        settings, db_schema=other_schema, redis_prefix="b" + settings.redis_prefix
    )
    pool = await db.create_pool(other)
    holder = await asyncpg.connect(settings.database_url)
    try:
        them = Deps(settings=other, pool=pool, redis=deps.redis, clock=clock)
        await stocked_launch(deps, L, units=1, registrations=0)
        await stocked_launch(them, L, units=2, registrations=0)
        assert them.launch_lock(L) != deps.launch_lock(L)
        await holder.execute("SELECT pg_advisory_lock($1)", deps.launch_lock(L))
        report = await asyncio.wait_for(rebuild(them, L), timeout=30)  # a bound, not a timing
        assert report.allocated == 2
    finally:
        await holder.close()
        await pool.close()
        con = await asyncpg.connect(settings.database_url)
        await con.execute(f'DROP SCHEMA "{other_schema}" CASCADE')
        await con.close()
