"""Lazy expiry: a reserve releases the holds that are due, though it asks the expiry set
only when meta 'due' (a lower bound on the next expiry) says something may be due.

Every way a held hold gets a time (a reserve under whatever hold time is set now, an
aborted confirm going back to held) must lower that bound, or a due hold would keep
its unit past its time. These tests fail if one of them does not. (A refused reserve
releases everything due whatever the bound says, so stock here is plentiful.)
"""

from __future__ import annotations

from service.admin import launches
from service.admin.models import LaunchUpdate
from service.clock import FakeClock
from service.deps import Deps
from service.stock.confirm import _abort
from service.stock.holds import reserve
from tests.stock_kit import read_stock, seed_launch

L = "due"


async def _held(deps: Deps) -> set[str]:
    return {i for i, h in (await read_stock(deps, L)).holds.items() if h["st"] == "held"}


async def test_a_shorter_hold_time_lowers_the_bound(deps: Deps, clock: FakeClock) -> None:
    regs = await seed_launch(deps, L, hold_seconds=600, limit=4, allocs=[5, 5, 5, 5])
    long = await reserve(deps, L, regs[0], "S1", "K1")
    await launches.update_launch(
        deps, L, LaunchUpdate(hold_seconds=60), actor="test", channel="admin"
    )
    short = await reserve(deps, L, regs[1], "S1", "K1")
    assert short.expires_ms < long.expires_ms
    clock.advance(61)
    # Stock is plentiful, so this reserve is not refused: it releases the due hold only
    # because the bound told it to look.
    await reserve(deps, L, regs[2], "S1", "K1")
    held = await _held(deps)
    assert short.hold_id not in held
    assert long.hold_id in held


async def test_a_hold_back_from_an_aborted_confirm_lowers_the_bound(
    deps: Deps, clock: FakeClock
) -> None:
    regs = await seed_launch(deps, L, hold_seconds=60, limit=4, allocs=[5, 5, 5, 5])
    first = await reserve(deps, L, regs[0], "S1", "K1")
    keys = deps.keys(L)
    now = deps.clock.now_ms()
    began = await deps.scripts.run("confirm_begin", keys, now, now + 30_000, first.hold_id, regs[0])
    assert began[0][0] == "ok"
    clock.advance(30)
    later = await reserve(deps, L, regs[1], "S1", "K1")  # the bound is now `later`'s time
    await reserve(deps, L, regs[2], "S1", "K1")
    await _abort(deps, L, first.hold_id, "retry")  # back to held, due before `later`
    assert first.hold_id in await _held(deps)
    clock.advance(31)  # past `first`'s time, not `later`'s
    await reserve(deps, L, regs[3], "S1", "K1")
    held = await _held(deps)
    assert first.hold_id not in held
    assert later.hold_id in held


async def test_a_reload_forgets_the_bound_and_looks(deps: Deps, clock: FakeClock) -> None:
    regs = await seed_launch(deps, L, hold_seconds=60, limit=4, allocs=[5, 5, 5, 5])
    keys = deps.keys(L)
    await reserve(deps, L, regs[0], "S1", "K1")
    assert await deps.redis.hget(keys.meta, "due") is not None
    await deps.redis.hdel(keys.meta, "due")  # as after a load: unknown
    clock.advance(1)
    due = await reserve(deps, L, regs[1], "S1", "K1")
    first = await deps.redis.zrange(keys.expiry, 0, 0, withscores=True)
    assert float(await deps.redis.hget(keys.meta, "due") or 0) == first[0][1] < due.expires_ms
