"""Admission, as properties over random programs run against the real `admit` script:
nobody is admitted before someone ahead, the cap and the free units bound who is
admitted, and a lapsed window frees its place exactly once."""

from __future__ import annotations

import secrets

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.admin import allocations, launches
from service.admin.models import ItemCreate, LaunchCreate, LaunchUpdate, Transition
from service.clock import FakeClock
from service.deps import Deps
from service.queue import checkin, registrations
from service.queue.status import QueueWatch
from service.stock import holds
from service.stock.counts import redis_counts

A = {"actor": "test", "channel": "admin"}
WINDOW = 20

ops = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), st.sampled_from([0.3, 1.0, 2.5, 7.0, WINDOW + 1.0])),
        st.tuples(st.just("rate"), st.sampled_from([0.5, 1.0, 3.0, 10.0])),
        st.tuples(st.just("cap"), st.integers(1, 6)),
        st.tuples(st.just("hold"), st.integers(0, 5)),
        st.tuples(st.just("release"), st.integers(0, 5)),
    ),
    max_size=25,
)


async def _launch(deps: Deps, launch_id: str, units: int, people: int) -> dict[int, int]:
    await launches.create_launch(
        deps,
        LaunchCreate(
            id=launch_id,
            name="P",
            fairness_mode="fifo",
            admit_rate=1.0,
            active_cap=3,
            admission_window_seconds=WINDOW,
            hold_seconds=3600,
        ),
        **A,
    )
    await launches.add_item(deps, launch_id, "stores", ItemCreate(id="S", name="S"), **A)
    await launches.add_item(deps, launch_id, "skus", ItemCreate(id="K", name="K"), **A)
    await allocations.set_allocation(deps, launch_id, "S", "K", units, **A)
    await registrations.import_registrations(
        deps,
        launch_id,
        [(i, {"email": f"{launch_id}-{i}@example.com"}) for i in range(people)],
        **A,
    )
    await launches.transition(deps, launch_id, Transition(action="advance", to="checkin_open"), **A)
    ranks = {}
    for r in await registrations.list_registrations(deps, launch_id, limit=people):
        rank = (await checkin.check_in(deps, launch_id, r.id)).rank
        assert rank is not None
        ranks[rank] = r.id
    await launches.transition(deps, launch_id, Transition(action="advance", to="selling"), **A)
    return ranks


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(program=ops, units=st.integers(1, 8))
async def test_admission_keeps_order_cap_stock_and_lapses_once(
    deps: Deps, clock: FakeClock, program: list[tuple[str, float]], units: int
) -> None:
    launch_id = f"p{secrets.token_hex(4)}"
    people = 12
    reg_of = await _launch(deps, launch_id, units, people)
    keys = deps.keys(launch_id)
    watch = QueueWatch(deps)
    snap = await watch.refresh(launch_id)
    cap = 3
    held_by: dict[int, list[str]] = {}
    windows: dict[int, int] = {}  # rank -> deadline, as the model sees it
    lapsed = 0
    rate = 1.0  # admissions a second, as _launch sets it
    for op, arg in program:
        before = snap
        if op == "tick":
            clock.advance(arg)
        elif op == "rate":
            rate = arg
            await launches.update_launch(deps, launch_id, LaunchUpdate(admit_rate=arg), **A)
        elif op == "cap":
            cap = int(arg)
            await launches.update_launch(deps, launch_id, LaunchUpdate(active_cap=cap), **A)
        elif op == "hold":
            open_ranks = sorted(r for r, d in windows.items() if d > clock.now_ms())
            if open_ranks:
                rank = open_ranks[int(arg) % len(open_ranks)]
                hold = await holds.reserve(deps, launch_id, reg_of[rank], "S", "K", rank=rank)
                held_by.setdefault(rank, []).append(hold.hold_id)
                del windows[rank]
        elif op == "release":
            holding = sorted(r for r, h in held_by.items() if h)
            if holding:
                rank = holding[int(arg) % len(holding)]
                await holds.release(deps, launch_id, reg_of[rank], held_by[rank].pop())
        now = clock.now_ms()
        lapsed += sum(1 for d in windows.values() if d <= now)
        windows = {r: d for r, d in windows.items() if d > now}
        # What admission may use now: room under the cap, and free units not yet promised.
        shopping = sum(1 for h in held_by.values() if h)
        free = sum(c.available for c in await redis_counts(deps, launch_id))
        room = min(cap - len(windows) - shopping, free - len(windows))
        snap = await watch.refresh(launch_id)
        new = range(before.admitted, snap.admitted)
        if op == "tick" and arg * rate >= 1 and room >= 1 and before.admitted < people:
            assert len(new) >= 1, "time for one more, room and stock for one: admission moves"
        # Admission follows the queue: exactly the next ranks, each with a fresh window.
        for rank in new:
            windows[rank] = now + WINDOW * 1000
        in_redis = {
            int(m): int(s) for m, s in await deps.redis.zrange(keys.window, 0, -1, withscores=True)
        }
        assert in_redis == windows
        assert snap.admitted <= people
        assert snap.lapsed == lapsed, "each lapsed window counted once"
        assert snap.active == len(windows) + shopping
        if len(new):
            assert snap.active <= cap, "admitting never goes past the cap"
            assert len(windows) <= free, "never more admitted-and-waiting than free units"
