"""The waiting room's estimate on a fake clock: it appears as soon as admission is
measured, follows what admission really achieves (the set rate, or less when the
active cap or the stock holds it back), and never rises while nothing changes.

Each scenario polls one fixed ticket once a second for 60 s while the worker
refreshes every 200 ms, and prints the estimates (`pytest -s` shows them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from service.admin import allocations, launches
from service.admin.models import ItemCreate, LaunchCreate, Transition
from service.clock import FakeClock
from service.deps import Deps
from service.queue import checkin, registrations, tickets
from service.queue.eta import eta_seconds, measure
from service.queue.status import QueueWatch
from service.queue.tickets import TicketClaims

A = {"actor": "test", "channel": "admin"}
L = "eta"


async def _queue(deps: Deps, n: int, units: int, **kw: object) -> list[TicketClaims]:
    await launches.create_launch(
        deps,
        LaunchCreate(id=L, name="E", fairness_mode="fifo", **kw),
        **A,  # type: ignore[arg-type]
    )
    await launches.add_item(deps, L, "stores", ItemCreate(id="S1", name="S"), **A)
    await launches.add_item(deps, L, "skus", ItemCreate(id="K1", name="K"), **A)
    await allocations.set_allocation(deps, L, "S1", "K1", units, **A)
    await registrations.import_registrations(
        deps, L, [(i, {"email": f"p{i}@example.com"}) for i in range(n)], **A
    )
    regs = [r.id for r in await registrations.list_registrations(deps, L, limit=n)]
    await launches.transition(deps, L, Transition(action="advance", to="checkin_open"), **A)
    claims = [tickets.read(deps, (await checkin.check_in(deps, L, r)).ticket, L) for r in regs]
    await launches.transition(deps, L, Transition(action="advance", to="selling"), **A)
    return claims


@dataclass
class Run:
    etas: list[float | None]
    """The estimate at each poll (one a second)."""
    moved: list[bool]
    """Whether anyone was admitted since the poll before."""
    admitted_at: float | None
    """When (seconds from the start) the ticket's rank was admitted, if it was."""

    def first_shown(self) -> int | None:
        return next((i for i, e in enumerate(self.etas) if e is not None), None)

    def rises(self) -> list[tuple[int, float, float]]:
        """Polls where the estimate went up (by more than rounding) from the one before
        while nobody was admitted in between."""
        pairs = zip(self.etas, self.etas[1:], strict=False)
        return [
            (i + 1, a, b)
            for i, (a, b) in enumerate(pairs)
            if a is not None and b is not None and b > a + 0.5 and not self.moved[i + 1]
        ]

    def off(self, after: int, slack: float = 5.0) -> list[tuple[int, float, float]]:
        """From second `after` on, estimates more than a fifth (or `slack` s) off the truth."""
        assert self.admitted_at is not None
        return [
            (second, eta, self.admitted_at - second)
            for second, eta in enumerate(self.etas)
            if second >= after
            and eta is not None
            and abs(eta - (self.admitted_at - second))
            > max(slack, 0.2 * (self.admitted_at - second))
        ]


async def _watch(
    deps: Deps,
    clock: FakeClock,
    me: TicketClaims,
    seconds: int = 60,
    at: dict[int, Callable[[], Awaitable[object]]] | None = None,
) -> Run:
    """`at`: what happens at which second (from the sale's start)."""
    watch = QueueWatch(deps)
    etas: list[float | None] = []
    moved: list[bool] = []
    admitted_at = None
    seen = 0
    for tick in range(seconds * 5):
        if at and tick % 5 == 0 and tick // 5 in at:
            await at[tick // 5]()
        snap = await watch.refresh(L)
        if tick % 5 == 0:
            status = await watch.status(me)
            if status.state != "waiting":
                admitted_at = tick / 5
                break
            etas.append(status.eta_seconds)
            moved.append(snap.admitted != seen)
            seen = snap.admitted
        clock.advance(0.2)
    print(f"\nrank {me.rank}, ETA each second:", [None if e is None else round(e) for e in etas])
    print("admitted at", admitted_at)
    return Run(etas, moved, admitted_at)


async def test_estimate_at_a_steady_rate(deps: Deps, clock: FakeClock) -> None:
    claims = await _queue(deps, 400, units=1000, admit_rate=5.0, active_cap=10_000)
    run = await _watch(deps, clock, claims[320], seconds=80)
    shown = run.first_shown()
    assert shown is not None and shown <= 2, "shown as soon as a second of admission is measured"
    assert run.rises() == []
    assert run.admitted_at is not None and run.off(after=shown) == []


async def test_estimate_when_the_active_cap_holds_admission_back(
    deps: Deps, clock: FakeClock
) -> None:
    # Ten at a time, nobody holds: each ten's windows lapse after 20 s and let ten more
    # in, so admission runs at 0.5 a second, a tenth of the set rate, in bursts.
    claims = await _queue(
        deps, 200, units=1000, admit_rate=5.0, active_cap=10, admission_window_seconds=20
    )
    run = await _watch(deps, clock, claims[75], seconds=200)
    assert run.first_shown() is not None and run.first_shown() <= 2  # type: ignore[operator]
    assert run.rises() == [], "between bursts the estimate counts down or holds"
    # Once a minute of bursts is measured, it names the real time within a fifth, or
    # half a burst's period (a place in the middle of a burst waits for all of it).
    assert run.admitted_at is not None and run.off(after=65, slack=10) == []


async def test_estimate_when_the_stock_holds_admission_back(deps: Deps, clock: FakeClock) -> None:
    # Five units for everyone: five are admitted, nobody holds, so each five lapses
    # after 20 s and the next five are let in; the set rate alone would say seconds.
    claims = await _queue(
        deps, 100, units=5, admit_rate=5.0, active_cap=10_000, admission_window_seconds=20
    )
    run = await _watch(deps, clock, claims[37], seconds=200)
    assert run.rises() == []
    assert run.admitted_at is not None and run.off(after=65, slack=10) == []


async def test_estimate_follows_a_change_of_pace(deps: Deps, clock: FakeClock) -> None:
    # Five units: five are let in every 20 s (their turns lapse unused), a quarter of a
    # shopper a second. At second 70 a thousand units come: admission runs at the set
    # rate, twenty times as fast. Measured over the last minute, the estimate stayed
    # minutes long for most of that minute while the place came up in seconds.
    claims = await _queue(
        deps, 400, units=5, admit_rate=5.0, active_cap=10_000, admission_window_seconds=20
    )

    async def more_units() -> None:
        await allocations.set_allocation(deps, L, "S1", "K1", 1005, **A)

    run = await _watch(deps, clock, claims[300], seconds=200, at={70: more_units})
    assert run.admitted_at is not None and run.admitted_at > 110
    assert run.rises() == []
    assert run.off(after=90) == [], "right within 20 s of the change"


@given(
    steps=st.lists(st.tuples(st.integers(1, 20_000), st.integers(1, 40)), min_size=1, max_size=60),
    since=st.integers(0, 30_000),
    rank_ahead=st.integers(0, 5_000),
    waits=st.lists(st.integers(0, 90_000), min_size=2, max_size=6),
)
def test_with_nothing_admitted_the_estimate_never_rises(
    steps: list[tuple[int, int]], since: int, rank_ahead: int, waits: list[int]
) -> None:
    """Any history of the admitted counter; then time passes with no admission: each
    later estimate is no longer than the one before (or unknown)."""
    times, counts, t, n = [0], [0], 0, 0
    for gap, more in steps:
        t, n = t + gap, n + more
        times.append(t)
        counts.append(n)
    last: float | None = None
    for now in sorted(t + w for w in waits):
        pace = measure(times, counts, now, since, set_rate=50.0)
        estimate = eta_seconds(pace, n + rank_ahead, now)
        if estimate is not None and last is not None:
            assert estimate <= last + 0.1
        last = estimate if estimate is not None else last
