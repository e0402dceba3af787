"""Redis offering a unit Postgres has sold is mended, not just refused (stock/mend.py).

Postgres refuses a second live reservation on a unit whatever Redis believes; these tests
check that Redis then stops offering such units, so later shoppers are not sent to hold
(and be refused for) a unit that is gone.
"""

from __future__ import annotations

import pytest

from service import errors
from service.clock import FakeClock
from service.deps import Deps
from service.infra.keys import unit_member
from service.jobs import sweep_once
from service.stock.confirm import _insert, confirm, end
from service.stock.holds import reserve
from service.stock.rebuild import rebuild
from tests.serve import assert_consistent, selling_launch
from tests.stock_kit import free_units

L = "mend"


async def _lie_sold_units_are_free(deps: Deps, units: list[int]) -> None:
    """Redis forgets these confirmed units were sold, its counts agreeing with the lie
    (what a hold given back after its confirm committed leaves behind)."""
    keys = deps.keys(L)
    await deps.redis.zadd(keys.free, {unit_member("S1", "K1", u): 0 for u in units})
    await deps.redis.hincrby(keys.confirmed, "S1:K1", -len(units))


async def test_a_refused_confirm_makes_the_sweeper_withdraw_every_sold_unit_redis_offers(
    deps: Deps,
) -> None:
    a, b, c, d = await selling_launch(deps, L, units=3, registrations=4)
    sold = [await reserve(deps, L, reg, "S1", "K1") for reg in (a, b)]
    for reg, hold in zip((a, b), sold, strict=True):
        await confirm(deps, L, reg, hold.hold_id)
    await _lie_sold_units_are_free(deps, [h.unit_no for h in sold])

    stolen = await reserve(deps, L, c, "S1", "K1")
    assert stolen.unit_no == sold[0].unit_no
    with pytest.raises(errors.ConfirmRefused):
        await confirm(deps, L, c, stolen.hold_id)
    keys = deps.keys(L)
    assert await deps.redis.hget(keys.meta, "suspect") is not None
    assert ("S1:K1", sold[1].unit_no) in await free_units(deps, L)  # still offered

    await sweep_once(deps)

    assert await deps.redis.hget(keys.meta, "suspect") is None
    assert await free_units(deps, L) == [("S1:K1", 2)]
    assert await assert_consistent(deps, L) == {"S1:K1": (3, 1, 0, 2)}
    # The next shopper gets the one unit left, and keeps it.
    last = await reserve(deps, L, d, "S1", "K1")
    assert last.unit_no == 2
    await confirm(deps, L, d, last.hold_id)
    assert await assert_consistent(deps, L) == {"S1:K1": (3, 0, 0, 3)}


async def test_a_confirm_that_commits_after_a_rebuild_read_postgres_is_withdrawn(
    deps: Deps, clock: FakeClock
) -> None:
    """Redis lost mid-confirm: the rebuild reads Postgres before the insert commits, so it
    offers the unit again (from its fresh run) and drops the hold; `confirm_end` then finds
    the hold gone and takes the unit back out."""
    (reg, other) = await selling_launch(deps, L, units=3, registrations=2)
    hold = await reserve(deps, L, reg, "S1", "K1")
    deadline = clock.now_ms() + int(deps.settings.confirm_deadline_seconds * 1000)
    [(ok, store, sku, unit, slot)] = await deps.scripts.run(
        "confirm_begin", deps.keys(L), clock.now_ms(), deadline, hold.hold_id, reg
    )
    assert ok == "ok"
    await rebuild(deps, L)  # before the insert commits
    assert ("S1:K1", int(unit)) in await free_units(deps, L)
    made = await _insert(
        deps, L, hold.hold_id, reg, store, sku, int(unit), int(slot), "web", f"registration:{reg}"
    )
    assert made is not None

    await end(deps, [(L, hold.hold_id)])

    assert ("S1:K1", int(unit)) not in await free_units(deps, L)
    assert await assert_consistent(deps, L) == {"S1:K1": (3, 2, 0, 1)}
    assert await deps.redis.hget(deps.keys(L).cust, str(reg)) == "1"  # their slot is in use
    with pytest.raises(errors.LimitReached):
        await reserve(deps, L, reg, "S1", "K1")
    # Nobody else is sent to the sold unit.
    theirs = await reserve(deps, L, other, "S1", "K1")
    assert theirs.unit_no != int(unit)
    await confirm(deps, L, other, theirs.hold_id)
    assert await assert_consistent(deps, L) == {"S1:K1": (3, 1, 0, 2)}


async def test_mending_a_launch_redis_has_right_changes_nothing(deps: Deps) -> None:
    a, b = await selling_launch(deps, L, units=3, registrations=2)
    await confirm(deps, L, a, (await reserve(deps, L, a, "S1", "K1")).hold_id)
    held = await reserve(deps, L, b, "S1", "K1")
    keys = deps.keys(L)
    before = (await free_units(deps, L), await assert_consistent(deps, L))
    await deps.redis.hset(keys.meta, "suspect", 1)

    await sweep_once(deps)

    assert await deps.redis.hget(keys.meta, "suspect") is None
    assert (await free_units(deps, L), await assert_consistent(deps, L)) == before
    await confirm(deps, L, b, held.hold_id)


async def test_sold_units_inside_the_fresh_run_are_withdrawn_and_the_run_stays_whole(
    deps: Deps,
) -> None:
    regs = await selling_launch(deps, L, units=5, registrations=4)
    for reg in regs[:3]:
        await confirm(deps, L, reg, (await reserve(deps, L, reg, "S1", "K1")).hold_id)
    keys = deps.keys(L)
    # Redis believes units 0-2 were never taken: its fresh run starts at 0 again.
    await deps.redis.hset(keys.fresh, mapping={"S1:K1:n": 0})
    await deps.redis.hincrby(keys.fresh, "#", 3)
    await deps.redis.hincrby(keys.confirmed, "S1:K1", -3)
    await deps.redis.hset(keys.meta, "suspect", 1)

    await sweep_once(deps)

    assert await free_units(deps, L) == [("S1:K1", 3), ("S1:K1", 4)]
    assert await assert_consistent(deps, L) == {"S1:K1": (5, 2, 0, 3)}
    assert await deps.redis.hget(keys.fresh, "#") == "2"
    last = await reserve(deps, L, regs[3], "S1", "K1")
    assert last.unit_no == 3
