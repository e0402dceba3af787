"""Redis lost mid-sale: the queue comes back from Postgres and nobody loses their place."""

from __future__ import annotations

import asyncio

from service import errors
from service.admin import allocations, launches
from service.admin.models import ItemCreate, LaunchCreate, Transition
from service.clock import FakeClock
from service.deps import Deps
from service.queue import checkin, lifecycle, places, registrations, tickets
from service.queue.status import QueueWatch
from service.stock import holds
from service.web.queue import answer_status
from tests.serve import advance, assert_consistent, stocked_launch

A = {"actor": "test", "channel": "admin"}


async def _ceiling(deps: Deps, launch_id: str) -> int:
    found: int = await deps.pool.fetchval(
        "SELECT rank_ceiling FROM queue_state WHERE launch_id = $1", launch_id
    )
    return found


async def _fifo_checkin_open(
    deps: Deps, launch_id: str, *, units: int, registrations: int, admit_rate: float
) -> list[int]:
    """A first-come-first-served launch with check-in open; its registration ids."""
    regs = await stocked_launch(
        deps,
        launch_id,
        units=units,
        registrations=registrations,
        fairness_mode="fifo",
        admit_rate=admit_rate,
    )
    await advance(deps, launch_id, "checkin_open")
    return regs


async def _flush(deps: Deps) -> None:
    keys = [k async for k in deps.redis.scan_iter(match=f"{deps.settings.redis_prefix}*")]
    await deps.redis.delete(*keys)


async def test_a_lost_queue_is_restored_with_every_place(deps: Deps, clock: FakeClock) -> None:
    await launches.create_launch(
        deps,
        LaunchCreate(id="r1", name="R", admit_rate=2.0, active_cap=3, per_customer_limit=1),
        **A,
    )
    await launches.add_item(deps, "r1", "stores", ItemCreate(id="S", name="S"), **A)
    await launches.add_item(deps, "r1", "skus", ItemCreate(id="K", name="K"), **A)
    await allocations.set_allocation(deps, "r1", "S", "K", 20, **A)
    await registrations.import_registrations(
        deps, "r1", [(i, {"email": f"r{i}@example.com"}) for i in range(12)], **A
    )
    regs = [r.id for r in await registrations.list_registrations(deps, "r1", limit=12)]
    await launches.transition(
        deps, "r1", Transition(action="advance", to="registration_closed"), **A
    )
    await launches.transition(deps, "r1", Transition(action="advance", to="checkin_open"), **A)
    for r in regs[:8]:
        await checkin.check_in(deps, "r1", r)
    await launches.transition(deps, "r1", Transition(action="advance", to="selling"), **A)
    late = [await checkin.check_in(deps, "r1", r) for r in regs[8:]]
    assert [c.rank for c in late] == [8, 9, 10, 11]
    ticket = {
        r: tickets.read(deps, (await checkin.check_in(deps, "r1", r)).ticket, "r1") for r in regs
    }

    watch = QueueWatch(deps)
    await watch.load_active()
    await watch.refresh("r1")
    clock.advance(1.0)
    snap = await watch.refresh("r1")
    assert snap.admitted == 2
    first = min(ticket.values(), key=lambda c: c.rank)
    await holds.reserve(deps, "r1", first.registration_id, "S", "K", rank=first.rank)
    await lifecycle.save_counters(deps, watch.counters())

    await _flush(deps)  # Redis is lost: stock, holds, queue
    restored = await watch.refresh("r1")
    ceiling = await _ceiling(deps, "r1")
    assert 12 <= ceiling <= 12 + checkin.RANK_BLOCK
    # The queue comes back as long as the ranks Postgres let Redis give.
    assert (restored.phase, restored.qlen, restored.admitted) == ("drawn", ceiling, 2)
    # Drawn places come back from the draw: checking in again gives the same rank.
    for r in regs[:8]:
        assert (await checkin.check_in(deps, "r1", r)).rank == ticket[r].rank
    # Whoever was admitted may still shop; whoever was behind is still behind.
    second = sorted(ticket.values(), key=lambda c: c.rank)[1]
    await holds.reserve(deps, "r1", second.registration_id, "S", "K", rank=second.rank)
    third = sorted(ticket.values(), key=lambda c: c.rank)[2]
    try:
        await holds.reserve(deps, "r1", third.registration_id, "S", "K", rank=third.rank)
        raise AssertionError("rank 2 was not admitted before the loss")
    except errors.NotAdmitted:
        pass
    clock.advance(1.0)
    assert (await watch.refresh("r1")).admitted == 3, "admission goes on from where it was"
    await holds.reserve(deps, "r1", third.registration_id, "S", "K", rank=third.rank)
    # A new arrival queues behind everyone who was there.
    await registrations.import_registrations(deps, "r1", [(1, {"email": "new@example.com"})], **A)
    newcomer = (await registrations.list_registrations(deps, "r1", limit=20))[-1].id
    assert (await checkin.check_in(deps, "r1", newcomer)).rank == ceiling


async def test_check_ins_lost_before_the_draw_come_back_with_their_tickets(
    deps: Deps, clock: FakeClock
) -> None:
    regs = await stocked_launch(deps, "r2", units=5, registrations=6, admit_rate=1.0)
    await advance(deps, "r2", "registration_closed", "checkin_open")
    held = [tickets.read(deps, (await checkin.check_in(deps, "r2", r)).ticket, "r2") for r in regs]
    assert {c.rank for c in held} == {tickets.PREQUEUE}
    watch = QueueWatch(deps)
    await watch.load_active()
    assert (await watch.refresh("r2")).restored_ms == 0

    await _flush(deps)  # Redis is lost during the pre-queue, and the check-ins with it
    clock.advance(1.0)
    restored = await watch.refresh("r2")
    assert (restored.phase, restored.restored_ms) == ("pre", clock.now_ms())
    assert await deps.redis.hlen(deps.keys("r2").qpos) == 0

    # Four holders poll before the draw: each is checked in again, once.
    for claims in held[:4]:
        out = await answer_status(deps, watch, claims)
        assert out.ticket is not None and out.status.state == "prequeue"
        fresh = tickets.read(deps, out.ticket, "r2")
        assert (await answer_status(deps, watch, fresh)).ticket is None  # from memory now
    assert await deps.redis.hlen(deps.keys("r2").qpos) == 4

    await advance(deps, "r2", "selling")
    await watch.refresh("r2")
    ranks = {}
    for claims in held:
        out = await answer_status(deps, watch, claims)
        assert out.ticket is not None, "a pre-queue ticket is never left waiting for a draw"
        ranks[claims.registration_id] = tickets.read(deps, out.ticket, "r2").rank
    # The four who came back were in the draw; the two who did not poll queue behind.
    assert sorted(ranks[r] for r in regs[:4]) == [0, 1, 2, 3]
    assert sorted(ranks[r] for r in regs[4:]) == [4, 5]


async def test_places_given_after_the_draw_come_back_from_postgres(
    deps: Deps, clock: FakeClock
) -> None:
    regs = await _fifo_checkin_open(deps, "r3", units=5, registrations=7, admit_rate=1.0)
    placed = {r: (await checkin.check_in(deps, "r3", r)).rank for r in regs[:5]}
    assert sorted(placed.values()) == [0, 1, 2, 3, 4]
    # The sweeper keeps them; copying twice keeps each once and trims what it copied.
    assert await places.drain_places(deps, "r3", batch=3, most=3) == 3
    assert await places.drain_places(deps, "r3") == 2
    assert await places.drain_places(deps, "r3") == 0
    await deps.redis.rpush(deps.keys("r3").placelog, f"{regs[0]}|0")  # a copy replayed
    assert await places.drain_places(deps, "r3") == 1
    kept = await deps.pool.fetch("SELECT registration_id, rank FROM queue_places")
    assert {r["registration_id"]: r["rank"] for r in kept} == placed
    late = (await checkin.check_in(deps, "r3", regs[5])).rank  # not kept before the loss
    assert late == 5
    assert await _ceiling(deps, "r3") > late, "Postgres let Redis give it first"

    watch = QueueWatch(deps)
    await watch.load_active()
    await _flush(deps)
    clock.advance(1.0)
    restored = await watch.refresh("r3")
    ceiling = await _ceiling(deps, "r3")
    assert (restored.phase, restored.qlen) == ("drawn", ceiling)
    for r, rank in placed.items():  # checking in again: the same place, not a new one
        assert (await checkin.check_in(deps, "r3", r)).rank == rank
    qrank = await deps.redis.hgetall(deps.keys("r3").qrank)  # "your turn" finds them
    assert {int(k): int(v) for k, v in qrank.items()} == {v: k for k, v in placed.items()}
    # A newcomer queues behind every place given, kept or not: the one given after the
    # last copy (the loss window: about a sweep's interval) is not given again. Its
    # holder, checking in again, queues behind too: Redis forgot them.
    newcomer = (await checkin.check_in(deps, "r3", regs[6])).rank
    assert newcomer == ceiling > late
    assert (await checkin.check_in(deps, "r3", regs[5])).rank == ceiling + 1


async def test_a_burst_of_check_ins_gets_distinct_ranks_all_below_the_kept_ceiling(
    deps: Deps,
) -> None:
    regs = await _fifo_checkin_open(deps, "r4", units=5, registrations=300, admit_rate=1.0)
    # All at once, racing for the ceiling from one worker's pool and client.
    done = await asyncio.gather(*(checkin.check_in(deps, "r4", r) for r in regs))
    ranks = sorted(c.rank for c in done if c.rank is not None)
    assert ranks == list(range(300))
    ceiling = await _ceiling(deps, "r4")
    assert 300 <= ceiling <= 300 + checkin.RANK_BLOCK * 4, "a burst does not strand a queue"
    # Checking in again, as racing, changes nothing.
    again = await asyncio.gather(*(checkin.check_in(deps, "r4", r) for r in regs[::7]))
    assert [c.rank for c in again] == [c.rank for c in done[::7]]


async def test_the_holder_of_a_place_lost_with_redis_keeps_it_through_the_ticket(
    deps: Deps, clock: FakeClock
) -> None:
    regs = await _fifo_checkin_open(deps, "r5", units=10, registrations=4, admit_rate=100.0)
    for r in regs[:2]:
        await checkin.check_in(deps, "r5", r)
    assert await places.drain_places(deps, "r5") == 2  # the sweeper copied these two
    lost = await checkin.check_in(deps, "r5", regs[2])  # given in the loss window
    watch = QueueWatch(deps)
    await watch.load_active()
    await _flush(deps)
    clock.advance(1.0)
    await watch.refresh("r5")
    newcomer = await checkin.check_in(deps, "r5", regs[3])
    assert lost.rank == 2 and newcomer.rank is not None and newcomer.rank > 2

    await advance(deps, "r5", "selling")
    await watch.refresh("r5")
    clock.advance(1.0)
    await watch.refresh("r5")
    claims = tickets.read(deps, lost.ticket, "r5")
    assert (await answer_status(deps, watch, claims)).status.state == "admitted"
    hold = await holds.reserve(deps, "r5", regs[2], "S1", "K1", rank=claims.rank)
    assert hold.registration_id == regs[2]


async def test_redis_lost_in_a_lull_gives_back_the_stock_too_and_the_sale_goes_on(
    deps: Deps, clock: FakeClock
) -> None:
    """Nobody holds, nobody is admitted to hold: only the admission refresh runs. It
    restores the queue and the stock, and admission resumes with no hold to trigger it."""
    regs = await _fifo_checkin_open(deps, "r5", units=13, registrations=20, admit_rate=2.0)
    await advance(deps, "r5", "selling")
    ticket = {
        r: tickets.read(deps, (await checkin.check_in(deps, "r5", r)).ticket, "r5") for r in regs
    }
    watch = QueueWatch(deps)
    await watch.load_active()
    await watch.refresh("r5")
    clock.advance(1.0)
    assert (await watch.refresh("r5")).admitted == 2
    await lifecycle.save_counters(deps, watch.counters())

    await _flush(deps)  # a lull: no request touches the launch from here on
    clock.advance(1.0)
    snap = await watch.refresh("r5")
    assert (snap.phase, snap.loaded, snap.free, snap.admitting) == ("drawn", True, 13, True)
    for _ in range(3):
        clock.advance(1.0)
        snap = await watch.refresh("r5")
    assert snap.admitted == 2 + 6, "admission goes on at its rate"
    # An admitted shopper behind the ones before the loss holds a unit.
    sixth = next(c for c in ticket.values() if c.rank == 5)
    hold = await holds.reserve(deps, "r5", sixth.registration_id, "S1", "K1", rank=sixth.rank)
    assert hold.unit_no == 0
    assert await assert_consistent(deps, "r5") == {"S1:K1": (13, 12, 1, 0)}
