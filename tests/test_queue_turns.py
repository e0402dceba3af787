"""A turn, told as it happened: a customer who may take two takes them one after the
other in their turn, and status, holds and the page's words agree; a reservation
confirmed and then cancelled is said to be cancelled, not a turn that passed."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from service import errors
from service.clock import FakeClock
from service.deps import Deps
from service.queue import tickets
from service.queue.status import QueueWatch
from service.stock import confirm, holds, reservations
from service.stock.codes import format_code
from tests.serve import selling_launch, tickets_for

L = "drop"


async def _admitted(
    deps: Deps, clock: FakeClock, n: int, **kw: object
) -> tuple[list[int], list[tickets.TicketClaims], QueueWatch]:
    regs = await selling_launch(deps, L, registrations=n, **kw)  # type: ignore[arg-type]
    claims = [tickets.read(deps, t, L) for t in await tickets_for(deps, L, regs)]
    watch = QueueWatch(deps)
    await watch.refresh(L)
    clock.advance(1.0)  # admission moves with time
    await watch.refresh(L)
    return regs, claims, watch


async def test_a_limit_of_two_may_be_taken_one_after_the_other_in_a_turn(
    deps: Deps, clock: FakeClock
) -> None:
    regs, claims, watch = await _admitted(deps, clock, 1, limit=2, units=5)
    first = await holds.reserve(deps, L, regs[0], "S1", "K1", rank=0)
    clock.advance(200)  # past the first window: holding keeps the turn
    assert (await watch.status(claims[0])).state == "admitted"
    got = await confirm.confirm(deps, L, regs[0], first.hold_id)
    status = await watch.status(claims[0])
    assert status.state == "admitted", "a customer who may take two is still in their turn"
    assert "1 of the 2" in status.message and "1 more" in status.message
    assert status.admitted_until_ms is not None and status.admitted_until_ms > deps.clock.now_ms()
    second = await holds.reserve(deps, L, regs[0], "S1", "K1", rank=0)  # the API agrees
    await confirm.confirm(deps, L, regs[0], second.hold_id)
    done = await watch.status(claims[0])
    assert done.state == "done" and format_code(got.code) in done.message
    with pytest.raises(errors.NotAdmitted):  # both taken: the turn is over
        await holds.reserve(deps, L, regs[0], "S1", "K1", rank=0)


async def test_the_turn_after_a_confirmation_runs_out_like_any_window(
    deps: Deps, clock: FakeClock
) -> None:
    regs, claims, watch = await _admitted(deps, clock, 1, limit=2, units=5)
    hold = await holds.reserve(deps, L, regs[0], "S1", "K1", rank=0)
    await confirm.confirm(deps, L, regs[0], hold.hold_id)
    clock.advance(121)  # the fresh window (120 s) passes unused
    await watch.refresh(L)
    status = await watch.status(claims[0])
    assert status.state == "done" and "My reservation" in status.message
    with pytest.raises(errors.NotAdmitted):
        await holds.reserve(deps, L, regs[0], "S1", "K1", rank=0)


async def test_a_limit_of_one_ends_the_turn_at_the_confirmation(
    deps: Deps, clock: FakeClock
) -> None:
    regs, claims, watch = await _admitted(deps, clock, 1, limit=1, units=5)
    hold = await holds.reserve(deps, L, regs[0], "S1", "K1", rank=0)
    await confirm.confirm(deps, L, regs[0], hold.hold_id)
    assert (await watch.status(claims[0])).state == "done"
    assert await deps.redis.zcard(deps.keys(L).window) == 0, "no window is opened again"


async def test_confirmed_then_cancelled_is_said_so(deps: Deps, clock: FakeClock) -> None:
    regs, claims, watch = await _admitted(deps, clock, 1, limit=1, units=5)
    hold = await holds.reserve(deps, L, regs[0], "S1", "K1", rank=0)
    got = await confirm.confirm(deps, L, regs[0], hold.hold_id)
    await reservations.cancel(
        deps, L, got.id, registration_id=regs[0], actor=f"registration:{regs[0]}", channel="web"
    )
    for later in (0, 600):  # at once, and long after the window would have lapsed
        clock.advance(later)
        await watch.refresh(L)
        status = await watch.status(claims[0])
        assert status.state == "done", later
        assert f"{format_code(got.code)} was cancelled" in status.message
        assert "went back on sale" in status.message
        assert (
            "without a hold" not in status.message and "without a reservation" not in status.message
        )


async def test_the_fresh_ticket_after_the_draw_is_documented(
    client: AsyncTestClient,  # type: ignore[type-arg]
) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    ticket = schema["components"]["schemas"]["StatusOut"]["properties"]["ticket"]
    assert "draw" in ticket["description"] and "cookie" in ticket["description"]
