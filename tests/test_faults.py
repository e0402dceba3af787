"""Faults: Redis lying or lost, a process dying inside a confirm, Postgres failing.

Postgres is the source of truth (invariant 3): whatever Redis believes, Postgres never
holds more live reservations than unit rows, and Redis can always be rebuilt from it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from service import errors
from service.clock import FakeClock
from service.deps import Deps
from service.infra.keys import unit_member
from service.infra.redis import create_redis
from service.stock.confirm import _insert, confirm, find_by_hold
from service.stock.holds import expire, reserve
from service.stock.rebuild import rebuild
from service.stock.reconciler import reconcile
from tests.serve import assert_consistent, clients, free_port, selling_launch, server_env

L = "drop"


async def live_and_units(deps: Deps) -> tuple[int, int]:
    row = await deps.pool.fetchrow(
        "SELECT (SELECT count(*) FROM reservations WHERE launch_id = $1 AND unit_no IS NOT NULL)"
        " AS live, (SELECT count(*) FROM units WHERE launch_id = $1) AS units",
        L,
    )
    assert row is not None
    return row["live"], row["units"]


async def hold_state(deps: Deps, hold_id: str) -> str | None:
    raw = await deps.redis.hget(deps.keys(L).holds, hold_id)
    return None if raw is None else str(json.loads(raw)["st"])


async def flush(deps: Deps) -> None:
    """Lose every Redis key of this test, as a Redis restart without persistence would."""
    keys = [k async for k in deps.redis.scan_iter(match=f"{deps.settings.redis_prefix}*")]
    assert keys
    await deps.redis.delete(*keys)


async def test_a_confirmed_unit_put_back_in_redis_is_refused_by_postgres(deps: Deps) -> None:
    first, second = await selling_launch(deps, L, units=1, registrations=2)
    hold = await reserve(deps, L, first, "S1", "K1")
    await confirm(deps, L, first, hold.hold_id)
    # Redis lies: the confirmed unit is free again.
    await deps.redis.zadd(deps.keys(L).free, {unit_member("S1", "K1", hold.unit_no): 0})

    stolen = await reserve(deps, L, second, "S1", "K1")
    assert stolen.unit_no == hold.unit_no
    with pytest.raises(errors.ConfirmRefused):
        await confirm(deps, L, second, stolen.hold_id)

    assert await live_and_units(deps) == (1, 1)
    assert await find_by_hold(deps, L, stolen.hold_id) is None
    keys = deps.keys(L)
    assert await hold_state(deps, stolen.hold_id) is None
    assert await deps.redis.hget(keys.cust, str(second)) is None  # their slot is free again
    assert await deps.redis.hget(keys.meta, "suspect") is not None
    await rebuild(deps, L)
    assert await assert_consistent(deps, L) == {"S1:K1": (1, 0, 0, 1)}


async def test_a_unit_redis_invented_is_dropped_when_postgres_has_no_such_row(deps: Deps) -> None:
    a, b, c = await selling_launch(deps, L, units=2, registrations=3)
    await confirm(deps, L, a, (await reserve(deps, L, a, "S1", "K1")).hold_id)
    kept = await reserve(deps, L, b, "S1", "K1")
    keys = deps.keys(L)
    await deps.redis.zadd(keys.free, {unit_member("S1", "K1", 999): 0})
    await deps.redis.hincrby(keys.allocated, "S1:K1", 1)

    invented = await reserve(deps, L, c, "S1", "K1")
    assert invented.unit_no == 999
    with pytest.raises(errors.ConfirmRefused):
        await confirm(deps, L, c, invented.hold_id)

    assert await live_and_units(deps) == (1, 2)
    assert await hold_state(deps, invented.hold_id) is None
    assert await hold_state(deps, kept.hold_id) == "held"
    # The invented unit left Redis's stock; Redis agrees with Postgres again.
    assert await assert_consistent(deps, L) == {"S1:K1": (2, 0, 1, 1)}
    with pytest.raises(errors.SoldOut):
        await reserve(deps, L, c, "S1", "K1")


@pytest.mark.parametrize("hold_seconds", [300, 10])
async def test_a_crash_between_confirm_begin_and_the_commit_is_finished_by_the_reconciler(
    deps: Deps, clock: FakeClock, hold_seconds: int
) -> None:
    """Whether or not the hold's own time ran out meanwhile: the shopper asked in time."""
    (reg,) = await selling_launch(deps, L, units=1, registrations=1, hold_seconds=hold_seconds)
    hold = await reserve(deps, L, reg, "S1", "K1")
    deadline = clock.now_ms() + int(deps.settings.confirm_deadline_seconds * 1000)
    [reply] = await deps.scripts.run(
        "confirm_begin", deps.keys(L), clock.now_ms(), deadline, hold.hold_id, reg
    )
    assert reply[0] == "ok"
    # ...and the process dies here. Until the deadline the hold neither expires nor settles.
    clock.set(deadline - 1)
    assert await expire(deps, L) == 0
    assert await reconcile(deps, L) == {"confirmed": 0, "aborted": 0, "left": 0}
    assert await hold_state(deps, hold.hold_id) == "confirming"

    clock.set(deadline + 1)
    assert await reconcile(deps, L) == {"confirmed": 1, "aborted": 0, "left": 0}
    assert await hold_state(deps, hold.hold_id) is None
    assert await live_and_units(deps) == (1, 1)
    assert await assert_consistent(deps, L) == {"S1:K1": (1, 0, 0, 1)}
    made = await find_by_hold(deps, L, hold.hold_id)
    assert made is not None and made.registration_id == reg
    kinds = await deps.pool.fetch(
        "SELECT actor, channel FROM events WHERE kind = 'reservation.confirmed'"
    )
    assert [tuple(k) for k in kinds] == [("system", "system")]
    # The shopper's retry is answered with that reservation; so is the outbox's e-mail.
    again = await confirm(deps, L, reg, hold.hold_id)
    assert (again.id, again.code) == (made.id, made.code)


async def test_a_crash_between_the_commit_and_confirm_end_is_confirmed_by_the_reconciler(
    deps: Deps, clock: FakeClock
) -> None:
    (reg,) = await selling_launch(deps, L, units=2, registrations=1)
    hold = await reserve(deps, L, reg, "S1", "K1")
    deadline = clock.now_ms() + int(deps.settings.confirm_deadline_seconds * 1000)
    [(ok, store, sku, unit, slot)] = await deps.scripts.run(
        "confirm_begin", deps.keys(L), clock.now_ms(), deadline, hold.hold_id, reg
    )
    assert ok == "ok"
    committed = await _insert(
        deps, L, hold.hold_id, reg, store, sku, int(unit), int(slot), "web", f"registration:{reg}"
    )
    assert committed is not None
    # ...the process dies before confirm_end.
    clock.set(deadline + 1)
    assert await reconcile(deps, L) == {"confirmed": 1, "aborted": 0, "left": 0}
    assert await hold_state(deps, hold.hold_id) is None
    assert await assert_consistent(deps, L) == {"S1:K1": (2, 1, 0, 1)}
    assert await deps.redis.hget(deps.keys(L).cust, str(reg)) == "1"  # the slot stays taken
    # The shopper's retry sees the reservation that was committed, code and all.
    again = await confirm(deps, L, reg, hold.hold_id)
    assert (again.id, again.code) == (committed.id, committed.code)
    with pytest.raises(errors.LimitReached):
        await reserve(deps, L, reg, "S1", "K1")


async def _blocked_by(deps: Deps, locker: asyncpg.Connection) -> int:
    """How many backends wait for a lock `locker` holds, or for one that waits for it."""
    found: int = await deps.pool.fetchval(
        "WITH first AS (SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)))"
        " SELECT count(*) FROM pg_stat_activity"
        " WHERE pg_blocking_pids(pid) && (ARRAY(SELECT pid FROM first) || $1)",
        locker.get_server_pid(),
    )
    return found


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(400):  # a bound on retries (50 ms apart), not a wait for an event
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never: {what}")


async def test_a_confirm_in_flight_past_its_deadline_is_finished_not_given_back(
    deps: Deps, clock: FakeClock
) -> None:
    """The insert waits on a lock (as on a frozen Postgres) past the confirm deadline,
    while the reconciler settles the hold. Whatever the order of the two, the unit is
    sold once: the shopper's code is a live reservation, and Redis never offers it again."""
    first, second = await selling_launch(deps, L, units=1, registrations=2, hold_seconds=60)
    hold = await reserve(deps, L, first, "S1", "K1")
    assert deps.settings.database_url is not None
    locker = await asyncpg.connect(
        deps.settings.database_url, server_settings={"search_path": deps.settings.db_schema}
    )
    try:
        async with locker.transaction():
            await locker.execute(
                "SELECT 1 FROM units WHERE launch_id = $1 AND unit_no = $2 FOR UPDATE",
                L,
                hold.unit_no,
            )
            confirming = asyncio.create_task(confirm(deps, L, first, hold.hold_id))
            await _until(lambda: _blocked(deps, locker, 1), "the insert waits for the lock")
            clock.advance(deps.settings.confirm_deadline_seconds + 1)
            settling = asyncio.create_task(reconcile(deps, L))
            await _until(
                lambda: _blocked(deps, locker, 2, unless=settling), "the reconciler settles"
            )
        reservation = await confirming
        await settling
    finally:
        await locker.close()
    # Long after, the hold's own time is up too: nothing may come back to stock.
    clock.advance(120)
    await expire(deps, L)
    assert await assert_consistent(deps, L) == {"S1:K1": (1, 0, 0, 1)}
    live = await find_by_hold(deps, L, hold.hold_id)
    assert live is not None and (live.code, live.status) == (reservation.code, "confirmed")
    with pytest.raises(errors.SoldOut):
        await reserve(deps, L, second, "S1", "K1")


async def _blocked(
    deps: Deps, locker: asyncpg.Connection, n: int, unless: asyncio.Task[Any] | None = None
) -> bool:
    return (unless is not None and unless.done()) or await _blocked_by(deps, locker) >= n


async def _mid_sale(deps: Deps) -> tuple[list[int], list[str]]:
    """10 units: 3 confirmed, 3 held. Returns registrations and the held hold ids."""
    regs = await selling_launch(deps, L, units=10, registrations=10)
    for reg in regs[:3]:
        await confirm(deps, L, reg, (await reserve(deps, L, reg, "S1", "K1")).hold_id)
    held = [(await reserve(deps, L, reg, "S1", "K1")).hold_id for reg in regs[3:6]]
    return regs, held


async def test_redis_flushed_mid_sale_rebuilds_from_postgres(deps: Deps) -> None:
    regs, held = await _mid_sale(deps)
    await flush(deps)

    # The next script call finds the launch gone and rebuilds it before reserving.
    await reserve(deps, L, regs[6], "S1", "K1")
    assert await assert_consistent(deps, L) == {"S1:K1": (10, 6, 1, 3)}
    with pytest.raises(errors.HoldNotFound):  # holds live in Redis only: they are lost
        await confirm(deps, L, regs[3], held[0])
    with pytest.raises(errors.LimitReached):  # confirmed customers keep their slots
        await reserve(deps, L, regs[0], "S1", "K1")

    report = await rebuild(deps, L)
    assert (report.allocated, report.confirmed, report.available) == (10, 3, 7)
    assert await assert_consistent(deps, L) == {"S1:K1": (10, 7, 0, 3)}


async def test_concurrent_reserves_after_a_flush_rebuild_once_and_keep_every_hold(
    deps: Deps,
) -> None:
    regs = await selling_launch(deps, L, units=50, registrations=100)
    await flush(deps)
    async with clients(deps, 4) as many:
        results = await asyncio.gather(
            *(reserve(many[i % 4], L, reg, "S1", "K1") for i, reg in enumerate(regs)),
            return_exceptions=True,
        )
    holds = [r for r in results if not isinstance(r, BaseException)]
    for r in results:
        if isinstance(r, BaseException) and not isinstance(r, errors.SoldOut):
            raise r
    assert len(holds) == 50
    # Every hold a caller was given is still in Redis: no later rebuild wiped it.
    in_redis = await deps.redis.hkeys(deps.keys(L).holds)
    assert sorted(in_redis) == sorted(h.hold_id for h in holds)
    assert await assert_consistent(deps, L) == {"S1:K1": (50, 0, 50, 0)}


async def test_the_rebuild_command_restores_counts_from_postgres(deps: Deps) -> None:
    await _mid_sale(deps)
    await flush(deps)
    exe = shutil.which("fairdrop")
    command = [exe] if exe else [sys.executable, "-m", "service"]
    proc = await asyncio.create_subprocess_exec(
        *command,
        "rebuild",
        L,
        env=server_env(deps.settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    report = json.loads(out.decode().strip().splitlines()[-1])
    assert report == {"launch_id": L, "allocated": 10, "confirmed": 3, "available": 7}
    assert await assert_consistent(deps, L) == {"S1:K1": (10, 7, 0, 3)}


async def test_a_failed_insert_leaves_the_hold_confirming_and_a_later_confirm_succeeds(
    deps: Deps,
) -> None:
    """A unit row locked FOR UPDATE blocks the reservation's foreign-key check
    (FOR KEY SHARE); with a lock_timeout the insert fails with a real Postgres error.
    The hold is not given back: a twin confirm's insert could still commit."""
    (reg,) = await selling_launch(deps, L, units=1, registrations=1)
    hold = await reserve(deps, L, reg, "S1", "K1")
    assert deps.settings.database_url is not None
    impatient = await asyncpg.create_pool(
        deps.settings.database_url,
        min_size=1,
        max_size=2,
        server_settings={"search_path": deps.settings.db_schema, "lock_timeout": "200ms"},
    )
    locker = await asyncpg.connect(
        deps.settings.database_url, server_settings={"search_path": deps.settings.db_schema}
    )
    try:
        blocked = Deps(settings=deps.settings, pool=impatient, redis=deps.redis, clock=deps.clock)
        async with locker.transaction():
            await locker.execute(
                "SELECT 1 FROM units WHERE launch_id = $1 AND unit_no = $2 FOR UPDATE",
                L,
                hold.unit_no,
            )
            with pytest.raises(errors.Unavailable) as failed:
                await confirm(blocked, L, reg, hold.hold_id)
        assert isinstance(failed.value.__cause__, asyncpg.LockNotAvailableError)
        assert await hold_state(deps, hold.hold_id) == "confirming"
        assert await deps.redis.zscore(deps.keys(L).expiry, hold.hold_id) is None
        assert await live_and_units(deps) == (0, 1)
        assert await assert_consistent(deps, L) == {"S1:K1": (1, 0, 1, 0)}

        reservation = await confirm(blocked, L, reg, hold.hold_id)
    finally:
        await locker.close()
        await impatient.close()
    assert reservation.hold_id == hold.hold_id
    assert await assert_consistent(deps, L) == {"S1:K1": (1, 0, 0, 1)}


async def test_redis_unreachable_is_unavailable_not_a_crash(deps: Deps) -> None:
    (reg,) = await selling_launch(deps, L, units=1, registrations=1)
    dead = create_redis(f"redis://127.0.0.1:{free_port()}/0")
    try:
        cut_off = Deps(settings=deps.settings, pool=deps.pool, redis=dead, clock=deps.clock)
        with pytest.raises(errors.Unavailable):
            await reserve(cut_off, L, reg, "S1", "K1")
    finally:
        await dead.aclose()
    assert await assert_consistent(deps, L) == {"S1:K1": (1, 1, 0, 0)}


async def test_a_reused_hold_id_is_refused_and_changes_nothing(
    deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = await selling_launch(deps, L, units=3, registrations=2)
    monkeypatch.setattr("service.stock.holds.new_hold_id", lambda: "same-id")
    kept = await reserve(deps, L, first, "S1", "K1")
    before = await assert_consistent(deps, L)
    with pytest.raises(errors.Conflict):
        await reserve(deps, L, second, "S1", "K1")
    assert await assert_consistent(deps, L) == before
    assert await hold_state(deps, kept.hold_id) == "held"
    raw = await deps.redis.hget(deps.keys(L).holds, kept.hold_id)
    assert raw is not None and json.loads(raw)["r"] == str(first)
