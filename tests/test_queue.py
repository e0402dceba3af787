"""The waiting room: one place per registration, a drawn pre-queue, admission in order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from service import errors
from service.admin import allocations, launches
from service.admin.models import ItemCreate, LaunchCreate, LaunchUpdate, Transition
from service.clock import FakeClock
from service.deps import Deps
from service.queue import checkin, draw, registrations
from service.queue.status import QueueWatch

A = {"actor": "test", "channel": "admin"}


async def _launch(deps: Deps, n: int, units: int = 100, **kw: object) -> list[int]:
    await launches.create_launch(deps, LaunchCreate(id="q1", name="Q", **kw), **A)  # type: ignore[arg-type]
    await launches.add_item(deps, "q1", "stores", ItemCreate(id="S1", name="S"), **A)
    await launches.add_item(deps, "q1", "skus", ItemCreate(id="K1", name="K"), **A)
    await allocations.set_allocation(deps, "q1", "S1", "K1", units, **A)
    await registrations.import_registrations(
        deps, "q1", [(i, {"email": f"p{i}@example.com"}) for i in range(n)], **A
    )
    return [r.id for r in await registrations.list_registrations(deps, "q1", limit=n)]


async def _advance(deps: Deps, to: str) -> None:
    await launches.transition(deps, "q1", Transition(action="advance", to=to), **A)  # type: ignore[arg-type]


async def test_checkin_is_closed_until_the_waiting_room_opens(deps: Deps) -> None:
    regs = await _launch(deps, 1)
    with pytest.raises(errors.CheckinClosed):
        await checkin.check_in(deps, "q1", regs[0])


async def test_prequeue_is_drawn_then_late_arrivals_queue_behind(
    deps: Deps, clock: FakeClock
) -> None:
    regs = await _launch(deps, 30)
    await _advance(deps, "registration_closed")
    committed = await draw.commitment(deps, "q1")
    assert committed.seed is None and len(committed.seed_hash) == 64
    await _advance(deps, "checkin_open")
    early = {r: await checkin.check_in(deps, "q1", r) for r in regs[:20]}
    assert all(c.rank is None for c in early.values())
    again = await checkin.check_in(deps, "q1", regs[0])
    assert again.rank is None

    await _advance(deps, "selling")
    revealed = await draw.commitment(deps, "q1")
    assert revealed.seed is not None and revealed.seed_hash == committed.seed_hash
    published = await draw.published(deps, "q1")
    assert draw.check(published) == [] and len(published.order) == 20
    ranks = {r: await checkin.current_rank(deps, "q1", r) for r in regs[:20]}
    assert sorted(ranks.values()) == list(range(20))
    public = {
        r.id: r.public_id for r in await registrations.list_registrations(deps, "q1", limit=30)
    }
    assert [public[r] for r in sorted(ranks, key=lambda r: ranks[r])] == published.order

    late = [await checkin.check_in(deps, "q1", r) for r in regs[20:]]
    assert [c.rank for c in late] == list(range(20, 30))
    assert (await checkin.check_in(deps, "q1", regs[25])).rank == 25


async def test_concurrent_duplicate_checkins_get_one_place(deps: Deps) -> None:
    regs = await _launch(deps, 3, fairness_mode="fifo")
    await _advance(deps, "checkin_open")
    results = await asyncio.gather(
        *(checkin.check_in(deps, "q1", regs[i % 3]) for i in range(3000))
    )
    by_reg: dict[int, set[int | None]] = {}
    for i, c in enumerate(results):
        by_reg.setdefault(regs[i % 3], set()).add(c.rank)
    assert all(len(places) == 1 for places in by_reg.values())
    assert sorted(p for places in by_reg.values() for p in places if p is not None) == [0, 1, 2]


async def test_admission_follows_rate_cap_and_stock(deps: Deps, clock: FakeClock) -> None:
    regs = await _launch(deps, 40, units=10, fairness_mode="fifo", admit_rate=2.0, active_cap=6)
    await _advance(deps, "checkin_open")
    for r in regs:
        await checkin.check_in(deps, "q1", r)
    await _advance(deps, "selling")
    watch = QueueWatch(deps)
    assert (await watch.refresh("q1")).admitted == 0
    clock.advance(1.0)
    assert (await watch.refresh("q1")).admitted == 2
    clock.advance(10.0)
    snap = await watch.refresh("q1")
    assert snap.admitted == 6 and snap.active == 6, "the active cap holds"
    await launches.update_launch(deps, "q1", LaunchUpdate(active_cap=50), **A)
    clock.advance(100.0)
    snap = await watch.refresh("q1")
    assert snap.admitted == 10, "never more waiting-to-hold than free units"
    clock.advance(200.0)  # every window lapses; their capacity goes to the next ten
    snap = await watch.refresh("q1")
    assert (snap.lapsed, snap.admitted, snap.active) == (10, 20, 10)
    assert watch.pace("q1") is not None, "the worker measures the pace from the counts"


def _published(n: int) -> draw.PublishedDraw:
    import hashlib
    import secrets

    seed = secrets.token_bytes(32)
    roster = sorted(f"r{i:04d}" for i in range(n + 10))
    return draw.PublishedDraw(
        launch_id="q1",
        seed_hash=hashlib.sha256(seed).hexdigest(),
        seed=seed.hex(),
        roster_hash=draw.roster_hash(roster),
        roster=roster,
        entrants=n,
        order=draw.order(seed, roster[:n]),
    )


def test_verify_draw_accepts_the_real_order_and_refuses_any_change(tmp_path: Path) -> None:
    import subprocess
    import sys

    import msgspec

    good = _published(50)
    path = tmp_path / "draw.json"
    path.write_bytes(msgspec.json.encode(good))
    ok = subprocess.run(
        [sys.executable, "-m", "service", "verify-draw", str(path), "--id", good.order[7]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"{good.order[7]} is number 8 of 50" in ok.stdout
    swapped = msgspec.structs.replace(good, order=[good.order[1], good.order[0], *good.order[2:]])
    other_seed = msgspec.structs.replace(good, seed="00" * 32)
    extra = msgspec.structs.replace(
        good, order=draw.order(bytes.fromhex(good.seed), [*good.order, "r9999"])
    )
    other_roster = msgspec.structs.replace(good, roster=[*good.roster, "r9999"])
    cases = [
        (swapped, "not in the order"),
        (other_seed, "does not match"),
        (extra, "not on the roster"),
        (other_roster, "roster does not match"),
    ]
    for bad, says in cases:
        assert draw.check(bad), "a changed draw must fail"
        path.write_bytes(msgspec.json.encode(bad))
        run = subprocess.run(
            [sys.executable, "-m", "service", "verify-draw", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 1 and says in run.stdout


async def test_a_hold_needs_a_live_admission_and_ends_it(deps: Deps, clock: FakeClock) -> None:
    from service.stock import confirm, holds

    regs = await _launch(
        deps,
        4,
        units=10,
        fairness_mode="fifo",
        admit_rate=2.0,
        admission_window_seconds=30,
        per_customer_limit=2,
    )
    await _advance(deps, "checkin_open")
    ranks = [(await checkin.check_in(deps, "q1", r)).rank for r in regs]
    assert ranks == [0, 1, 2, 3]
    await _advance(deps, "selling")
    watch = QueueWatch(deps)
    await watch.refresh("q1")
    with pytest.raises(errors.NotAdmitted):
        await holds.reserve(deps, "q1", regs[0], "S1", "K1", rank=0)
    clock.advance(1.0)
    assert (await watch.refresh("q1")).admitted == 2
    with pytest.raises(errors.NotAdmitted):  # nobody behind is admitted before those ahead
        await holds.reserve(deps, "q1", regs[2], "S1", "K1", rank=2)
    with pytest.raises(errors.NotAdmitted):  # a ticket's rank is its own, not a neighbour's
        await holds.reserve(deps, "q1", regs[1], "S1", "K1", rank=5)
    first = await holds.reserve(deps, "q1", regs[0], "S1", "K1", rank=0)
    await holds.reserve(deps, "q1", regs[0], "S1", "K1", rank=0)  # still shopping: a second unit
    assert (await watch.refresh("q1")).active == 2
    await confirm.confirm(deps, "q1", regs[0], first.hold_id)
    assert (await watch.refresh("q1")).active == 2, "still holding one"
    await holds.expire(deps, "q1")
    clock.advance(301)  # the second hold expires: the shopper leaves
    await holds.expire(deps, "q1")
    snap = await watch.refresh("q1")
    assert snap.lapsed == 1, "rank 1 never held and lapsed, exactly once"
    with pytest.raises(errors.NotAdmitted):
        await holds.reserve(deps, "q1", regs[0], "S1", "K1", rank=0)
    with pytest.raises(errors.NotAdmitted):
        await holds.reserve(deps, "q1", regs[1], "S1", "K1", rank=1)
    assert snap.active == 2 and snap.admitted == 4, "the freed places went to the next two"
    staff = await holds.reserve(deps, "q1", regs[3], "S1", "K1")  # a staff channel vouches
    assert staff.store_id == "S1"


async def test_sold_out_means_nothing_free_and_nothing_held_anywhere(deps: Deps) -> None:
    from service.stock import confirm, holds

    regs = await _launch(deps, 4, units=1, fairness_mode="fifo")
    await launches.add_item(deps, "q1", "stores", ItemCreate(id="S2", name="S2"), **A)
    await allocations.set_allocation(deps, "q1", "S2", "K1", 2, **A)
    await _advance(deps, "checkin_open")
    await _advance(deps, "selling")
    watch = QueueWatch(deps)
    assert not (await watch.refresh("q1")).sold_out

    async def hold(reg: int, store: str) -> str:
        return (await holds.reserve(deps, "q1", reg, store, "K1")).hold_id

    at_s1, at_s2 = await hold(regs[0], "S1"), [await hold(r, "S2") for r in regs[1:3]]
    assert not (await watch.refresh("q1")).sold_out, "nothing free, but three units held"
    await confirm.confirm(deps, "q1", regs[0], at_s1)
    assert not (await watch.refresh("q1")).sold_out, "S1 holds none now, S2 still two"
    await holds.release(deps, "q1", regs[1], at_s2[0])
    assert not (await watch.refresh("q1")).sold_out, "one of S2's units is free again"
    last = await hold(regs[3], "S2")
    for reg, hold_id in ((regs[2], at_s2[1]), (regs[3], last)):
        await confirm.confirm(deps, "q1", reg, hold_id)
    assert (await watch.refresh("q1")).sold_out


async def test_status_tells_a_turn_that_ended_early(deps: Deps, clock: FakeClock) -> None:
    # Memory says "admitted" until the window's end; Redis knows when a turn ends early.
    from service.queue import tickets
    from service.stock import confirm, holds

    regs = await _launch(
        deps, 3, units=10, fairness_mode="fifo", admit_rate=10.0, admission_window_seconds=600
    )
    await _advance(deps, "checkin_open")
    claims = [
        tickets.read(deps, (await checkin.check_in(deps, "q1", r)).ticket, "q1") for r in regs
    ]
    await _advance(deps, "selling")
    watch = QueueWatch(deps)
    await watch.refresh("q1")
    clock.advance(1.0)
    assert (await watch.refresh("q1")).admitted == 3

    async def state(i: int) -> str:
        return (await watch.status(claims[i])).state

    assert [await state(i) for i in range(3)] == ["admitted"] * 3
    kept = await holds.reserve(deps, "q1", regs[0], "S1", "K1", rank=0)
    gone = await holds.reserve(deps, "q1", regs[1], "S1", "K1", rank=1)
    assert [await state(0), await state(1)] == ["admitted", "admitted"], "holding: still on"
    await confirm.confirm(deps, "q1", regs[0], kept.hold_id)
    await holds.release(deps, "q1", regs[1], gone.hold_id)
    done, over, untouched = [await watch.status(c) for c in claims]
    assert (done.state, over.state, untouched.state) == ("done", "lapsed", "admitted")
    assert "My reservation" in done.message and "without a reservation" in over.message
    assert done.next_poll_seconds == over.next_poll_seconds == 30.0
    with pytest.raises(errors.NotAdmitted):  # what reserve says too: the turn is used
        await holds.reserve(deps, "q1", regs[1], "S1", "K1", rank=1)
