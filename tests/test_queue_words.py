"""What the waiting room says matches what is happening: a place in the queue while
nobody is being let in (a first-come queue before its sale starts, a paused sale) says
so, instead of the message of a queue that moves."""

from __future__ import annotations

from service.admin import launches
from service.admin.models import Transition
from service.clock import FakeClock
from service.deps import Deps
from service.queue import tickets
from service.queue.status import MESSAGES, QueueWatch
from service.stock import confirm, holds
from tests.serve import ACTOR, advance, selling_launch, stocked_launch, tickets_for

L = "drop"
STILL = "Nobody is being let in right now"


async def test_a_queue_that_does_not_move_says_so(deps: Deps, clock: FakeClock) -> None:
    regs = await stocked_launch(deps, L, registrations=2, fairness_mode="fifo", active_cap=1)
    await advance(deps, L, "checkin_open")
    first, second = await tickets_for(deps, L, regs)
    watch = QueueWatch(deps)

    async def said(ticket: str) -> tuple[str, str]:
        await watch.refresh(L)
        clock.advance(5)
        status = await watch.status(tickets.read(deps, ticket, L))
        return status.state, status.message

    state, message = await said(second)
    assert state == "waiting" and message.startswith(STILL), message
    assert "the sale has not started" in message and "keep your place" in message

    await advance(deps, L, "selling")
    assert await said(first) == ("admitted", MESSAGES["admitted"])
    assert await said(second) == ("waiting", MESSAGES["waiting"]), (
        "it moves (as the first finishes)"
    )

    await launches.transition(deps, L, Transition(action="pause"), **ACTOR)
    state, message = await said(second)
    assert state == "waiting" and message.startswith(STILL) and "paused" in message


async def test_a_turn_that_goes_on_after_a_confirmation_says_how_many_more(
    deps: Deps, clock: FakeClock
) -> None:
    [reg] = await selling_launch(deps, L, registrations=1, limit=2)
    [ticket] = await tickets_for(deps, L, [reg])
    watch = QueueWatch(deps)
    await watch.refresh(L)
    clock.advance(1)
    await watch.refresh(L)
    hold = await holds.reserve(deps, L, reg, "S1", "K1", rank=0)
    await confirm.confirm(deps, L, reg, hold.hold_id)
    status = await watch.status(tickets.read(deps, ticket, L))
    assert (status.state, status.message) == (
        "admitted",
        "It is still your turn: you have reserved 1 of the 2 a customer may have, so you"
        " may hold 1 more before your time runs out.",
    )
