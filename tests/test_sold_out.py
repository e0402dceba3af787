"""Sold out follows the stock: the sweeper moves a selling launch with nothing available
or held to `sold_out`, and back to `selling` when units return (a cancel, an added
allocation, a no-show), each move an event in the audit trail. While sold out the
scripts go on selling, so a returned unit is offered at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from service import errors
from service.admin import allocations, launches
from service.admin.models import LaunchUpdate, Transition
from service.clock import FakeClock
from service.deps import Deps
from service.jobs import sweep_once
from service.stock import confirm, holds, reservations
from service.stock.models import Reservation
from tests.serve import ACTOR, selling_launch

L = "drop"


@pytest.fixture
def quiet(deps: Deps) -> Deps:
    """The sweeper as it runs, without sending e-mail."""
    deps.settings = msgspec.structs.replace(deps.settings, notify=False)
    return deps


async def _buy(deps: Deps, registration: int) -> Reservation:
    hold = await holds.reserve(deps, L, registration, "S1", "K1")
    return await confirm.confirm(deps, L, registration, hold.hold_id)


async def _cancel(deps: Deps, reservation: Reservation) -> None:
    await reservations.cancel(
        deps, L, reservation.id, registration_id=None, actor="test", channel="admin"
    )


async def _state_after_sweep(deps: Deps) -> str:
    await sweep_once(deps)
    return (await launches.get_launch(deps, L)).state


async def _moves(deps: Deps) -> list[tuple[str, str]]:
    """The launch's moves the sweeper made, from the audit trail."""
    rows = await deps.pool.fetch(
        "SELECT data FROM events WHERE kind = 'launch.advance' AND launch_id = $1"
        " AND actor = 'scheduler' AND channel = 'system' ORDER BY id",
        L,
    )
    return [(r["data"]["from"], r["data"]["to"]) for r in rows]


async def test_sold_out_and_back_as_units_go_and_return(quiet: Deps, clock: FakeClock) -> None:
    deps = quiet
    regs = await selling_launch(deps, L, units=2, registrations=5)
    assert await _state_after_sweep(deps) == "selling"

    first = await _buy(deps, regs[0])
    held = await holds.reserve(deps, L, regs[1], "S1", "K1")
    assert await _state_after_sweep(deps) == "selling", "a held unit may still come back"
    clock.advance(301)  # the hold lapses: its unit is free again
    assert await _state_after_sweep(deps) == "selling"
    with pytest.raises((errors.HoldExpired, errors.HoldNotFound)):
        await confirm.confirm(deps, L, regs[1], held.hold_id)
    await _buy(deps, regs[1])
    assert await _state_after_sweep(deps) == "sold_out"

    # A cancel: the unit is offered at once (the scripts still sell), then the state follows.
    await _cancel(deps, first)
    second = await _buy(deps, regs[2])
    assert await _state_after_sweep(deps) == "sold_out"
    await _cancel(deps, second)
    assert await _state_after_sweep(deps) == "selling"
    await _buy(deps, regs[3])
    assert await _state_after_sweep(deps) == "sold_out"

    # An added allocation.
    await allocations.set_allocation(deps, L, "S1", "K1", 3, **ACTOR)
    assert await _state_after_sweep(deps) == "selling"
    last = await _buy(deps, regs[4])
    assert await _state_after_sweep(deps) == "sold_out"
    with pytest.raises(errors.SoldOut):  # nothing left: said as such, not "not selling"
        await holds.reserve(deps, L, regs[0], "S1", "K1")

    # A no-show: the pickup window ends uncollected and the unit returns.
    now = datetime.fromtimestamp(clock.now_ms() / 1000, tz=UTC)
    await launches.update_launch(
        deps, L, LaunchUpdate(pickup_ends_at=now + timedelta(hours=1)), **ACTOR
    )
    clock.advance(3601)
    assert await _state_after_sweep(deps) == "selling"
    no_show = await deps.pool.fetchval("SELECT status FROM reservations WHERE id = $1", last.id)
    assert no_show == "no_show"

    going, coming = ("selling", "sold_out"), ("sold_out", "selling")
    assert await _moves(deps) == [going, coming] * 3


async def test_a_closed_launch_is_not_moved_by_its_stock(quiet: Deps) -> None:
    deps = quiet
    [reg] = await selling_launch(deps, L, units=1, registrations=1)
    bought = await _buy(deps, reg)
    assert await _state_after_sweep(deps) == "sold_out"
    await launches.transition(deps, L, Transition(action="close"), **ACTOR)
    await _cancel(deps, bought)
    assert await _state_after_sweep(deps) == "closed"
