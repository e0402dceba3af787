"""When the waiting room asks a shopper to poll next. Before the draw the whole crowd
waits for one moment: asked to come back every second, it polled in step (a spike's
check-ins, each a second apart for minutes, then all at once at the start). Now the
pre-queue polls rarely, and its first poll after the start lands at each
registration's own place in a few seconds. And no wait between polls outlasts a
quarter of the admission window, so an admitted shopper notices in time."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from service.admin import allocations, launches
from service.admin.models import ItemCreate, LaunchCreate, Transition
from service.clock import FakeClock
from service.deps import Deps
from service.queue import checkin, registrations, tickets
from service.queue.polls import START_SPREAD
from service.queue.status import QueueStatus, QueueWatch
from service.queue.tickets import TicketClaims

A = {"actor": "test", "channel": "admin"}
L = "polls"


async def _prequeue(
    deps: Deps, clock: FakeClock, n: int, start_in_s: float, **kw: object
) -> list[TicketClaims]:
    now = datetime.fromtimestamp(clock.now_ms() / 1000, tz=UTC)
    await launches.create_launch(
        deps,
        LaunchCreate(
            id=L,
            name="P",
            checkin_opens_at=now - timedelta(minutes=10),
            sale_starts_at=now + timedelta(seconds=start_in_s),
            **kw,  # type: ignore[arg-type]
        ),
        **A,  # type: ignore[arg-type]
    )
    await launches.add_item(deps, L, "stores", ItemCreate(id="S1", name="S"), **A)
    await launches.add_item(deps, L, "skus", ItemCreate(id="K1", name="K"), **A)
    await allocations.set_allocation(deps, L, "S1", "K1", 1000, **A)
    await registrations.import_registrations(
        deps, L, [(i, {"email": f"p{i}@example.com"}) for i in range(n)], **A
    )
    regs = [r.id for r in await registrations.list_registrations(deps, L, limit=n)]
    await launches.transition(deps, L, Transition(action="advance", to="checkin_open"), **A)
    return [tickets.read(deps, (await checkin.check_in(deps, L, r)).ticket, L) for r in regs]


async def _ask(deps: Deps, claims: list[TicketClaims]) -> list[QueueStatus]:
    watch = QueueWatch(deps)
    await watch.load_active()
    await watch.refresh(L)
    return [await watch.status(c) for c in claims]


async def test_the_prequeue_lands_its_first_polls_spread_just_after_the_start(
    deps: Deps, clock: FakeClock
) -> None:
    claims = await _prequeue(deps, clock, 1000, start_in_s=12)
    start_s = clock.now_ms() / 1000 + 12
    asked = await _ask(deps, claims)
    assert {s.state for s in asked} == {"prequeue"}
    due = [clock.now_ms() / 1000 + s.next_poll_seconds for s in asked]
    assert all(start_s <= d <= start_s + START_SPREAD + 0.1 for d in due), "just after the start"
    per_second = Counter(int(d - start_s) for d in due)
    assert max(per_second.values()) < 0.3 * len(due), f"not in step: {sorted(per_second.items())}"


async def test_the_prequeue_polls_rarely_while_the_start_is_far(
    deps: Deps, clock: FakeClock
) -> None:
    claims = await _prequeue(deps, clock, 400, start_in_s=600)
    asked = [s.next_poll_seconds for s in await _ask(deps, claims)]
    assert min(asked) >= 20 and max(asked) <= 30
    assert len(set(asked)) > 20, "spread, not one interval for everyone"


async def test_no_wait_between_polls_outlasts_a_quarter_of_the_window(
    deps: Deps, clock: FakeClock
) -> None:
    # A 12-second window: far back in a slow queue, a shopper asked to wait 30 s
    # between polls would find their turn over by the time they looked.
    claims = await _prequeue(
        deps, clock, 300, start_in_s=600, admission_window_seconds=12, admit_rate=1.0
    )
    assert max(s.next_poll_seconds for s in await _ask(deps, claims)) <= 3.0
    await launches.transition(deps, L, Transition(action="advance", to="selling"), **A)
    watch = QueueWatch(deps)
    await watch.load_active()
    for _ in range(20):  # admission measured: the far end's ETA is minutes
        await watch.refresh(L)
        clock.advance(0.2)
    drawn = [
        tickets.read(deps, (await checkin.check_in(deps, L, c.registration_id)).ticket, L)
        for c in claims
    ]
    last = [await watch.status(c) for c in sorted(drawn, key=lambda c: c.rank)[-5:]]
    assert {s.state for s in last} == {"waiting"}
    assert all(s.eta_seconds is not None and s.eta_seconds > 60 for s in last)
    assert max(s.next_poll_seconds for s in last) <= 3.0
