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
from tests.serve import ACTOR, advance, stocked_launch, tickets_for

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
