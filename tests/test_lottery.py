"""The lottery mode: K drawn and invited by the verifiable draw, the rest on a waiting
list that moves up, in the drawn order, when invited shoppers lapse or cancel."""

from __future__ import annotations

import asyncio

import pytest

from service import errors
from service.admin import allocations, launches
from service.admin.models import ItemCreate, LaunchCreate, LaunchUpdate, Transition
from service.clock import FakeClock
from service.deps import Deps
from service.notify import send_pending
from service.queue import checkin, draw, lifecycle, lottery, registrations
from service.queue.status import QueueWatch
from tests.mail import smtp_server

A = {"actor": "test", "channel": "admin"}
K = 4


async def _launch(deps: Deps, n: int, **kw: object) -> list[int]:
    body = LaunchCreate(
        id="lt",
        name="Lottery",
        fairness_mode="lottery",
        lottery_size=K,
        **kw,  # type: ignore[arg-type]
    )
    await launches.create_launch(deps, body, **A)
    await launches.add_item(deps, "lt", "stores", ItemCreate(id="S1", name="S"), **A)
    await launches.add_item(deps, "lt", "skus", ItemCreate(id="K1", name="K"), **A)
    await allocations.set_allocation(deps, "lt", "S1", "K1", 50, **A)
    await registrations.import_registrations(
        deps, "lt", [(i, {"email": f"p{i}@example.com"}) for i in range(n)], **A
    )
    return [r.id for r in await registrations.list_registrations(deps, "lt", limit=n)]


async def _advance(deps: Deps, to: str) -> None:
    await launches.transition(deps, "lt", Transition(action="advance", to=to), **A)  # type: ignore[arg-type]


async def _drawn(deps: Deps, n: int = 10) -> tuple[list[int], list[int]]:
    """A launch drawn at check-in open: (registrations in drawn order, all registrations)."""
    regs = await _launch(deps, n)
    await _advance(deps, "registration_open")
    await _advance(deps, "registration_closed")
    await _advance(deps, "checkin_open")
    order = list(await deps.pool.fetchval("SELECT drawn FROM draws WHERE launch_id = 'lt'"))
    return order, regs


async def test_a_lottery_launch_needs_its_size_and_keeps_its_rules_once_closed(
    deps: Deps,
) -> None:
    with pytest.raises(errors.InvalidField) as refused:
        await launches.create_launch(
            deps, LaunchCreate(id="l9", name="L", fairness_mode="lottery"), **A
        )
    assert refused.value.extra["fields"] == ["lottery_size"]
    await launches.create_launch(deps, LaunchCreate(id="l9", name="L"), **A)
    with pytest.raises(errors.InvalidField):
        await launches.update_launch(deps, "l9", LaunchUpdate(fairness_mode="lottery"), **A)
    await launches.update_launch(
        deps, "l9", LaunchUpdate(fairness_mode="lottery", lottery_size=3), **A
    )
    for to in ("registration_open", "registration_closed"):
        await launches.transition(deps, "l9", Transition(action="advance", to=to), **A)  # type: ignore[arg-type]
    with pytest.raises(errors.Conflict):
        await launches.update_launch(deps, "l9", LaunchUpdate(lottery_size=30), **A)
    assert (await launches.get_launch(deps, "l9")).lottery_size == 3


async def test_the_draw_invites_the_first_k_of_a_verifiable_order(deps: Deps) -> None:
    order, _ = await _drawn(deps, 10)
    published = await draw.published(deps, "lt")
    assert draw.check(published) == [], "anyone can check the lottery with verify-draw"
    assert len(published.order) == 10 == len(order)
    public = {
        r.id: r.public_id for r in await registrations.list_registrations(deps, "lt", limit=10)
    }
    assert [public[r] for r in order] == published.order
    statuses = dict(
        await deps.pool.fetch("SELECT id, draw_status FROM registrations WHERE launch_id = 'lt'")
    )
    assert [statuses[r] for r in order] == ["invited"] * K + ["waitlisted"] * (10 - K)

    for n, r in enumerate(order[:K]):
        placed = await checkin.check_in(deps, "lt", r)
        assert placed.rank == n, "an invited shopper's place is their place in the draw"
        assert (await checkin.check_in(deps, "lt", r)).rank == n, "the same place again"
    with pytest.raises(errors.NotInvited):
        await checkin.check_in(deps, "lt", order[K])

    first_waiting = await lottery.result(deps, "lt", order[K + 1])
    assert (first_waiting.result, first_waiting.waitlist_position) == ("waitlisted", 2)
    assert (await lottery.result(deps, "lt", order[0])).result == "invited"


async def test_everyone_drawn_hears_the_outcome(deps: Deps) -> None:
    order, _ = await _drawn(deps, 6)
    with smtp_server(deps) as inbox:
        assert await send_pending(deps) == 6
    subjects = {m["To"].addresses[0].addr_spec: m["Subject"] for m in inbox.messages}
    emails = dict(
        await deps.pool.fetch("SELECT id, email FROM registrations WHERE launch_id = 'lt'")
    )
    assert all(subjects[emails[r]].startswith("You were drawn") for r in order[:K])
    assert all("not drawn" in subjects[emails[r]] for r in order[K:])
    body = next(m for m in inbox.messages if m["To"].addresses[0].addr_spec == emails[order[K]])
    text = " ".join(body.get_body(("plain",)).get_content().split())  # type: ignore[union-attr]
    assert "You are number 1 on the waiting list" in text


async def test_the_waiting_list_moves_in_order_when_turns_lapse(
    deps: Deps, clock: FakeClock
) -> None:
    order, _ = await _drawn(deps, 8)
    await launches.update_launch(
        deps, "lt", LaunchUpdate(admit_rate=100.0, admission_window_seconds=30), **A
    )
    for r in order[:K]:
        await checkin.check_in(deps, "lt", r)
    await _advance(deps, "selling")
    watch = QueueWatch(deps)
    await watch.load_active()
    assert (await watch.refresh("lt")).admitted == 0, "admission starts now"
    clock.advance(1.0)
    assert (await watch.refresh("lt")).admitted == K
    await watch.move_waiting_lists()
    assert (await lottery.result(deps, "lt", order[K])).result == "waitlisted", "nobody lapsed"

    clock.advance(31.0)  # every invited shopper lets the turn lapse
    snap = await watch.refresh("lt")
    assert snap.lapsed == K
    await watch.move_waiting_lists()
    await watch.move_waiting_lists()  # again: nobody moves twice
    moved = order[K : 2 * K]
    assert [(await lottery.result(deps, "lt", r)).result for r in moved] == ["invited"] * K
    assert (await lottery.result(deps, "lt", order[2 * K - 1])).waitlist_position is None
    ranks = [(await checkin.check_in(deps, "lt", r)).rank for r in moved]
    assert ranks == list(range(K, 2 * K)), "moved up: the next places, in the drawn order"
    clock.advance(1.0)
    assert (await watch.refresh("lt")).admitted == 2 * K, "and admission reaches them"
    kinds = [
        r["topic"]
        for r in await deps.pool.fetch("SELECT topic FROM outbox WHERE topic LIKE '%moved_up'")
    ]
    assert len(kinds) == K


async def test_a_cancelled_reservation_moves_the_waiting_list(deps: Deps, clock: FakeClock) -> None:
    from service.stock import confirm, holds, reservations

    order, _ = await _drawn(deps, 8)
    await _advance(deps, "selling")
    hold = await holds.reserve(deps, "lt", order[0], "S1", "K1")
    reservation = await confirm.confirm(deps, "lt", order[0], hold.hold_id)
    assert await lottery.advance(deps, "lt", lapsed=0) == []
    await reservations.cancel(
        deps, "lt", reservation.id, registration_id=order[0], actor="test", channel="web"
    )
    assert await lottery.advance(deps, "lt", lapsed=0) == [order[K]]
    assert (await checkin.check_in(deps, "lt", order[K])).rank == K


async def test_racing_workers_move_each_place_once(deps: Deps) -> None:
    order, _ = await _drawn(deps, 10)
    moved = await asyncio.gather(
        *(lottery.move_up(deps, "lt", target, reason="test") for target in (1, 2, 3, 3, 2, 3))
    )
    flat = [r for batch in moved for r in batch]
    assert sorted(flat) == sorted(order[K : K + 3]), "each of the next three moved exactly once"
    invited = await deps.pool.fetchval(
        "SELECT count(*) FROM registrations WHERE launch_id = 'lt' AND draw_status = 'invited'"
    )
    assert invited == K + 3
    more = await lottery.move_up(deps, "lt", 100, reason="test")
    assert more == order[K + 3 :], "the list runs out; nobody is invited twice"


async def test_a_lost_redis_keeps_the_invited_places_and_the_gate(deps: Deps) -> None:
    order, _ = await _drawn(deps, 8)
    await lottery.move_up(deps, "lt", 1, reason="test")
    keys = deps.keys("lt")
    await deps.redis.delete(keys.qpos, keys.qmeta)
    assert await lifecycle.restore(deps, "lt")
    assert [(await checkin.check_in(deps, "lt", r)).rank for r in order[: K + 1]] == list(
        range(K + 1)
    )
    with pytest.raises(errors.NotInvited):
        await checkin.check_in(deps, "lt", order[K + 1])
