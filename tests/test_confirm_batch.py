"""Confirms batched together keep every hold's own fate, under a real race."""

from __future__ import annotations

import asyncio
import random

from service import errors
from service.clock import FakeClock
from service.deps import Deps
from service.infra.keys import unit_member
from service.stock import holds
from service.stock.confirm_batch import ConfirmBatcher
from service.stock.models import Hold
from service.stock.rebuild import rebuild
from tests.serve import assert_consistent, selling_launch
from tests.stock_kit import free_units


async def _hold_of_unit(deps: Deps, regs: list[int], unit_no: int) -> Hold:
    for reg in regs:
        hold = await holds.reserve(deps, "drop", reg, "S1", "K1")
        if hold.unit_no == unit_no:
            return hold
    raise AssertionError(f"no hold got unit {unit_no}")


async def test_a_mixed_batch_settles_each_hold_correctly(deps: Deps, clock: FakeClock) -> None:
    regs = await selling_launch(deps, units=80, registrations=80, hold_seconds=300)
    expiring = [await holds.reserve(deps, "drop", r, "S1", "K1") for r in regs[:5]]
    clock.advance(250)
    good = [await holds.reserve(deps, "drop", r, "S1", "K1") for r in regs[5:45]]
    batcher = ConfirmBatcher(deps, max_batch=16)
    first = await batcher.confirm("drop", good[0].registration_id, good[0].hold_id)
    clock.advance(60)  # the first five holds are past their time; the rest are not
    # Redis lies: a unit that a reservation owns is offered again, and one that never was.
    await deps.redis.zadd(deps.keys("drop").free, {unit_member("S1", "K1", good[0].unit_no): 0})
    liar = await _hold_of_unit(deps, regs[45:60], good[0].unit_no)
    gone = min(u for _, u in await free_units(deps, "drop"))  # the next a hold takes
    await deps.pool.execute("DELETE FROM units WHERE unit_no = $1", gone)  # Redis did not hear
    ghost = await _hold_of_unit(deps, regs[60:], gone)

    calls = [(h, "twice") for h in good[1:] for _ in range(2)]
    calls += [(good[0], "again"), (liar, "taken"), (ghost, "ghost")]
    calls += [(h, "expired") for h in expiring]
    random.Random(7).shuffle(calls)
    results = await asyncio.gather(
        *(batcher.confirm("drop", h.registration_id, h.hold_id) for h, _ in calls),
        return_exceptions=True,
    )
    by_hold: dict[str, list[object]] = {}
    for (h, _), result in zip(calls, results, strict=True):
        by_hold.setdefault(h.hold_id, []).append(result)

    assert by_hold[good[0].hold_id] == [first], "confirming again returns the same reservation"
    for h in good[1:]:
        a, b = by_hold[h.hold_id]
        assert not isinstance(a, BaseException) and a == b, (a, b)
    assert isinstance(by_hold[liar.hold_id][0], errors.ConfirmRefused)
    assert isinstance(by_hold[ghost.hold_id][0], errors.ConfirmRefused)
    for h in expiring:
        assert isinstance(by_hold[h.hold_id][0], errors.HoldExpired | errors.HoldNotFound)
    codes = await deps.pool.fetch("SELECT code FROM reservations")
    assert len(codes) == 40 == len({r["code"] for r in codes})
    assert await deps.redis.hget(deps.keys("drop").meta, "suspect"), "the lies are flagged"
    await rebuild(deps, "drop")
    counts = await assert_consistent(deps, "drop")
    assert counts["S1:K1"][3] == 40


async def test_many_concurrent_confirms_share_round_trips(deps: Deps) -> None:
    regs = await selling_launch(deps, units=300, registrations=300)
    held = [await holds.reserve(deps, "drop", r, "S1", "K1") for r in regs]
    batcher = ConfirmBatcher(deps)
    sizes: list[int] = []
    insert_many = batcher._insert_many

    async def counting(jobs: list) -> dict:  # type: ignore[type-arg]
        sizes.append(len(jobs))
        return await insert_many(jobs)

    batcher._insert_many = counting  # type: ignore[method-assign]
    done = await asyncio.gather(
        *(batcher.confirm("drop", h.registration_id, h.hold_id) for h in held)
    )
    assert len({r.code for r in done}) == 300
    assert sum(sizes) == 300 and len(sizes) < 30, f"{sizes}: not batched"
    await assert_consistent(deps, "drop")


async def test_a_batch_begins_and_ends_each_launch_in_one_script_call(deps: Deps) -> None:
    # Two launches in one batch, and a third whose Redis state was lost: each launch's
    # holds go to Redis together, and a lost launch does not hold the others up.
    held: list[Hold] = []
    for launch in ("one", "two", "lost"):
        regs = await selling_launch(deps, launch, units=20, registrations=20)
        held += [await holds.reserve(deps, launch, r, "S1", "K1") for r in regs]
    await deps.redis.delete(*deps.keys("lost").all)  # Redis forgot this launch
    calls: list[tuple[str, str, int]] = []
    run_each = deps.scripts.run_each

    async def counting(name, each, **kw):  # type: ignore[no-untyped-def]
        calls.extend((name, keys.launch_id, len(args)) for keys, args in each)
        return await run_each(name, each, **kw)

    deps.scripts.run_each = counting  # type: ignore[method-assign]
    batcher = ConfirmBatcher(deps, max_batch=100, max_inflight=1)
    results = await asyncio.gather(
        *(batcher.confirm(h.launch_id, h.registration_id, h.hold_id) for h in held),
        return_exceptions=True,
    )
    by_launch: dict[str, list[object]] = {}
    for h, result in zip(held, results, strict=True):
        by_launch.setdefault(h.launch_id, []).append(result)
    # The first confirm starts a batch of its own; the other 59 share the next one.
    assert ("confirm_begin", "one", 2 + 2 * 1) in calls  # now, deadline, one pair
    for launch, first in (("one", 1), ("two", 0)):
        assert all(not isinstance(r, BaseException) for r in by_launch[launch])
        assert ("confirm_begin", launch, 2 + 2 * (20 - first)) in calls
        assert ("confirm_end", launch, 1 + 20 - first) in calls
        counts = await assert_consistent(deps, launch)
        assert counts["S1:K1"][3] == 20
    assert ("confirm_begin", "lost", 2 + 2 * 20) in calls
    assert all(isinstance(r, errors.HoldNotFound) for r in by_launch["lost"])
    assert len([c for c in calls if c[0] == "confirm_begin"]) == 4, calls
