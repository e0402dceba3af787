"""Units never taken are kept as one run per (store, sku), two numbers in Redis, not a
free-set member each; the units given back go into the free set below the run, so the
lowest free unit still goes first. The state machine (test_stock_state_machine) drives
every path through runs and set together; these pin the parts it cannot see."""

from __future__ import annotations

import secrets

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from service.admin.allocations import set_allocation
from service.deps import Deps
from service.infra.keys import unit_member
from service.stock.confirm import confirm
from service.stock.counts import redis_counts
from service.stock.holds import release, reserve
from service.stock.rebuild import fresh_run, rebuild
from tests.serve import assert_consistent
from tests.stock_kit import free_units, read_stock, seed_launch

L = "runs"
ADMIN = {"actor": "test", "channel": "admin"}


@given(st.sets(st.integers(0, 60), max_size=40), st.data())
def test_the_run_is_the_free_units_up_to_the_highest(units: set[int], data: st.DataObject) -> None:
    taken = data.draw(st.sets(st.sampled_from(sorted(units))) if units else st.just(set()))
    free = sorted(units - taken)
    top = max(units, default=-1) + 1
    first, end = fresh_run(free, top)
    run = set(range(first, end))
    assert end == top, "the run ends where Postgres numbers the next unit"
    assert run <= set(free)
    assert all(u < first for u in set(free) - run), "the rest lies below the run"
    if first < end:
        assert first - 1 not in set(free), "the run is as long as it can be"


async def test_a_launch_keeps_no_member_per_unit_until_one_comes_back(deps: Deps) -> None:
    regs = await seed_launch(deps, L, hold_seconds=300, limit=2, allocs=[20_000, 0, 0, 0])
    keys = deps.keys(L)
    assert await deps.redis.zcard(keys.free) == 0
    assert await deps.redis.hmget(keys.fresh, "S1:K1:n", "S1:K1:t") == ["0", "20000"]
    first = await reserve(deps, L, regs[0], "S1", "K1")
    second = await reserve(deps, L, regs[1], "S1", "K1")
    assert (first.unit_no, second.unit_no) == (0, 1)
    await release(deps, L, regs[0], first.hold_id)
    assert await deps.redis.zrange(keys.free, 0, -1) == [unit_member("S1", "K1", 0)]
    again = await reserve(deps, L, regs[2], "S1", "K1")
    assert again.unit_no == 0, "the lowest free unit first: the one given back"
    assert (await reserve(deps, L, regs[3], "S1", "K1")).unit_no == 2, "then the run"
    assert (await assert_consistent(deps, L))["S1:K1"] == (20_000, 19_997, 3, 0)


async def test_allocation_changes_move_the_end_of_the_run(deps: Deps) -> None:
    regs = await seed_launch(deps, L, hold_seconds=300, limit=2, allocs=[6, 0, 0, 0])
    keys = deps.keys(L)
    holds = [await reserve(deps, L, r, "S1", "K1") for r in regs[:3]]  # units 0, 1, 2
    await release(deps, L, regs[1], holds[1].hold_id)  # 1 back in the free set
    await set_allocation(deps, L, "S1", "K1", 4, **ADMIN)  # 5 and 4 go: the run's end
    assert await deps.redis.hmget(keys.fresh, "S1:K1:n", "S1:K1:t") == ["3", "4"]
    await set_allocation(deps, L, "S1", "K1", 2, **ADMIN)  # 3, then 1 from the set
    assert await free_units(deps, L) == []
    await set_allocation(deps, L, "S1", "K1", 6, **ADMIN)  # Postgres numbers 3, 4, 5, 6
    assert sorted(await free_units(deps, L)) == [("S1:K1", u) for u in (3, 4, 5, 6)]
    assert await deps.redis.hmget(keys.fresh, "S1:K1:n", "S1:K1:t") == ["3", "7"]
    assert (await assert_consistent(deps, L))["S1:K1"] == (6, 4, 2, 0)


async def test_a_rebuild_keeps_the_run_past_the_highest_taken_unit(deps: Deps) -> None:
    regs = await seed_launch(deps, L, hold_seconds=300, limit=2, allocs=[5, 0, 0, 0])
    for r in regs[:3]:
        await reserve(deps, L, r, "S1", "K1")
    await rebuild(deps, L)  # the holds are lost with Redis: every unit is free again
    keys = deps.keys(L)
    assert await deps.redis.zcard(keys.free) == 0
    assert await deps.redis.hmget(keys.fresh, "S1:K1:n", "S1:K1:t") == ["0", "5"]
    state = await read_stock(deps, L)
    assert sorted(state.free) == [("S1:K1", u) for u in range(5)]


async def test_stock_kept_only_in_the_free_set_still_sells(deps: Deps) -> None:
    # As Redis held stock before fresh runs (a launch loaded by the previous release):
    # every free unit a member, no run. Scripts must read it as they always did.
    regs = await seed_launch(deps, L, hold_seconds=300, limit=2, allocs=[4, 0, 0, 0])
    keys = deps.keys(L)
    await deps.redis.delete(keys.fresh)
    await deps.redis.zadd(keys.free, {unit_member("S1", "K1", u): 0 for u in range(4)})
    held = [await reserve(deps, L, r, "S1", "K1") for r in regs[:2]]
    assert [h.unit_no for h in held] == [0, 1]
    await set_allocation(deps, L, "S1", "K1", 3, **ADMIN)  # 3 goes, 2 stays
    await set_allocation(deps, L, "S1", "K1", 4, **ADMIN)  # Postgres numbers 3 again
    assert sorted(await free_units(deps, L)) == [("S1:K1", 2), ("S1:K1", 3)]
    # Every unit the free set keeps is below it, so the unit added starts a run.
    assert await deps.redis.hmget(keys.fresh, ["S1:K1:n", "S1:K1:t", "#"]) == ["3", "4", "1"]
    assert (await assert_consistent(deps, L))["S1:K1"] == (4, 2, 2, 0)


_FREE_IN_POSTGRES = """
SELECT coalesce(array_agg(u.unit_no ORDER BY u.unit_no) FILTER (WHERE r.id IS NULL), '{}'),
       coalesce(max(u.unit_no) + 1, 0)
FROM units u LEFT JOIN reservations r ON r.launch_id = u.launch_id
    AND r.store_id = u.store_id AND r.sku_id = u.sku_id AND r.unit_no = u.unit_no
WHERE u.launch_id = $1
"""


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    units=st.integers(1, 10),
    fates=st.lists(st.sampled_from(["confirm", "release", "keep"]), max_size=10),
    lower=st.integers(0, 6),
    raise_by=st.integers(0, 3),
)
# A gap above the highest reserved unit: 1 is given back, then withdrawn, under held 2.
@example(units=3, fates=["confirm", "release", "keep"], lower=1, raise_by=0)
async def test_a_rebuild_finds_the_run_that_stock_history_left(
    deps: Deps, units: int, fates: list[str], lower: int, raise_by: int
) -> None:
    """Units reserved, confirmed, given back, withdrawn (gaps) and added: the rebuild
    must find the run in Postgres's units, and put the rest below it."""
    lid = f"r{secrets.token_hex(4)}"
    regs = await seed_launch(deps, lid, hold_seconds=300, limit=1, allocs=[units, 0, 0, 0], regs=10)
    # All held first, then each settled: a unit given back then lies under held ones.
    held = [await reserve(deps, lid, reg, "S1", "K1") for reg in regs[: min(units, len(fates))]]
    for reg, hold, fate in zip(regs, held, fates, strict=False):
        if fate == "confirm":
            await confirm(deps, lid, reg, hold.hold_id)
        elif fate == "release":
            await release(deps, lid, reg, hold.hold_id)
    [count] = [c for c in await redis_counts(deps, lid) if c.store_id == "S1" and c.sku_id == "K1"]
    target = count.allocated - min(lower, count.available)
    if target != count.allocated:
        await set_allocation(deps, lid, "S1", "K1", target, **ADMIN)
    if raise_by:
        await set_allocation(deps, lid, "S1", "K1", target + raise_by, **ADMIN)
    await rebuild(deps, lid)

    free, top = await deps.pool.fetchrow(_FREE_IN_POSTGRES, lid)
    first = top  # the run: every unit from `first` up to the highest is there and free
    while first - 1 in free:
        first -= 1
    end = top
    keys = deps.keys(lid)
    assert await deps.redis.hmget(keys.fresh, "S1:K1:n", "S1:K1:t") == [str(first), str(end)]
    below = await deps.redis.zrange(keys.free, 0, -1)
    assert below == [unit_member("S1", "K1", u) for u in free if u < first]
    await assert_consistent(deps, lid)
