"""What agents do on the phone: move a reservation to another store (all or nothing, never
oversold), extend its pickup window, resend its code, note something down, book within
the limit. Each needs the agent role and shows on the timeline with actor and channel."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable
from datetime import timedelta
from typing import TypeVar

import pytest
from litestar.testing import AsyncTestClient

from service import errors
from service.admin.launches import update_launch
from service.admin.models import LaunchUpdate
from service.auth.apikeys import create_key
from service.clock import FakeClock
from service.customers import agent_actions, selfservice
from service.deps import Deps
from service.infra.keys import unit_member
from service.notify import send_pending
from service.pickup import desk
from service.pickup.windows import now_of, release_no_shows
from service.stock import confirm, holds, reservations
from service.stock.codes import format_code
from service.stock.models import Reservation
from service.stock.outbox import apply_pending
from service.stock.rebuild import rebuild
from service.stock.reconciler import reconcile
from tests.mail import smtp_server
from tests.serve import ACTOR, assert_consistent, clients, selling_launch

L = "drop"
T = TypeVar("T")
AGENT = {"actor": "key:agent", "channel": "phone", "reason": "customer called"}


async def _reserve(deps: Deps, reg: int, store: str = "S1", channel: str = "web") -> Reservation:
    hold = await holds.reserve(deps, L, reg, store, "K1")
    return await confirm.confirm(deps, L, reg, hold.hold_id, channel=channel)


async def _row(deps: Deps, rid: int) -> tuple[str, str, int | None]:
    row = await deps.pool.fetchrow(
        "SELECT status, store_id, unit_no FROM reservations WHERE id = $1", rid
    )
    return row["status"], row["store_id"], row["unit_no"]


async def test_a_move_takes_a_unit_there_and_gives_this_one_back(deps: Deps) -> None:
    regs = await selling_launch(deps, stores=("S1", "S2", "S3"), units=1, registrations=3)
    mine = await _reserve(deps, regs[0], "S1")
    await _reserve(deps, regs[1], "S3")  # S3 has nothing left

    moved = await agent_actions.move(deps, L, mine.id, "S2", **AGENT)
    assert (moved.store_id, moved.code) == ("S2", mine.code), "same reservation, same code"
    counts = await assert_consistent(deps, L)
    assert counts["S1:K1"] == (1, 1, 0, 0) and counts["S2:K1"] == (1, 0, 0, 1)
    slots = await deps.redis.hget(deps.keys(L).cust, str(regs[0]))
    assert slots == "1", "the customer keeps one slot, the one the reservation had"

    with pytest.raises(errors.SoldOut, match="stays at S2"):
        await agent_actions.move(deps, L, mine.id, "S3", **AGENT)
    with pytest.raises(errors.Conflict, match="at S2 already"):
        await agent_actions.move(deps, L, mine.id, "S2", **AGENT)
    with pytest.raises(errors.NotFound):
        await agent_actions.move(deps, L, mine.id, "S9", **AGENT)
    with pytest.raises(errors.NotFound):
        await agent_actions.move(deps, L, 10**9, "S1", **AGENT)
    assert await _row(deps, mine.id) == ("confirmed", "S2", 0)
    await assert_consistent(deps, L)
    await reservations.cancel(deps, L, mine.id, registration_id=None, **ACTOR)
    with pytest.raises(errors.Conflict, match="cancelled"):
        await agent_actions.move(deps, L, mine.id, "S1", **AGENT)
    counts = await assert_consistent(deps, L)
    assert counts["S2:K1"] == (1, 1, 0, 0), "the moved unit came back on cancel"


async def test_a_move_postgres_refuses_keeps_the_original(deps: Deps) -> None:
    regs = await selling_launch(deps, stores=("S1", "S2"), units=1, registrations=2)
    mine = await _reserve(deps, regs[0], "S1")
    theirs = await _reserve(deps, regs[1], "S2")
    unit = await deps.pool.fetchval("SELECT unit_no FROM reservations WHERE id = $1", theirs.id)
    # Redis lies: S2's sold unit looks free. Postgres's unit index refuses the move.
    await deps.redis.zadd(deps.keys(L).free, {unit_member("S2", "K1", unit): 0})
    with pytest.raises(errors.Conflict, match="stays where it was"):
        await agent_actions.move(deps, L, mine.id, "S2", **AGENT)
    assert await _row(deps, mine.id) == ("confirmed", "S1", 0)
    assert await _row(deps, theirs.id) == ("confirmed", "S2", unit)
    assert await deps.redis.hget(deps.keys(L).meta, "suspect"), "flagged for a rebuild"
    await rebuild(deps, L)
    counts = await assert_consistent(deps, L)
    assert counts == {"S1:K1": (1, 0, 0, 1), "S2:K1": (1, 0, 0, 1)}


async def test_a_mover_that_dies_has_its_unit_returned_by_the_reconciler(
    deps: Deps, clock: FakeClock
) -> None:
    regs = await selling_launch(deps, stores=("S1", "S2"), units=1, registrations=1)
    mine = await _reserve(deps, regs[0], "S1")
    # The Redis step of a move whose process died before Postgres saw it.
    args = (clock.now_ms(), "deadmove", regs[0], "S2", "K1", confirm.deadline_ms(deps))
    assert (await deps.scripts.run("move_begin", deps.keys(L), *args))[0] == "ok"
    assert (await assert_consistent(deps, L))["S2:K1"] == (1, 0, 1, 0)
    clock.advance(deps.settings.confirm_deadline_seconds + 1)
    assert await reconcile(deps, L) == {"confirmed": 0, "aborted": 1, "left": 0}
    assert (await assert_consistent(deps, L))["S2:K1"] == (1, 1, 0, 0)
    assert await deps.redis.hget(deps.keys(L).cust, str(regs[0])) == "1", "slot untouched"
    assert await _row(deps, mine.id) == ("confirmed", "S1", 0)


async def _after(deps: Deps, round_trips: int, work: Awaitable[T]) -> T:
    """`work`, a few Redis round trips late: the racers meet at different points."""
    for _ in range(round_trips):
        await deps.redis.ping()
    return await work


async def test_move_and_cancel_race_to_one_consistent_outcome(deps: Deps) -> None:
    rounds = 12
    regs = await selling_launch(deps, stores=("S1", "S2"), units=rounds, registrations=rounds)
    rng = random.Random(5)
    async with clients(deps, 2) as (a, b):
        for reg in regs:
            r = await _reserve(deps, reg, "S1")
            move = agent_actions.move(a, L, r.id, "S2", **AGENT)
            cancel = _after(
                b,
                rng.randrange(4),
                reservations.cancel(b, L, r.id, registration_id=reg, actor="t", channel="web"),
            )
            move_first = rng.random() < 0.5
            pair = (move, cancel) if move_first else (cancel, move)
            results = await asyncio.gather(*pair, return_exceptions=True)
            move_r, cancel_r = results if move_first else results[::-1]
            assert isinstance(cancel_r, Reservation), "the cancel always stands"
            status, store, unit = await _row(deps, r.id)
            assert (status, unit) == ("cancelled", None)
            if isinstance(move_r, Reservation):
                assert store == "S2", "moved, then cancelled there"
            else:
                assert isinstance(move_r, errors.Conflict), move_r
                assert store == "S1", "cancelled first: the move changed nothing"
            await apply_pending(deps)
            counts = await assert_consistent(deps, L)
            assert counts == {"S1:K1": (rounds, rounds, 0, 0), "S2:K1": (rounds, rounds, 0, 0)}


async def test_extend_a_pickup_window(deps: Deps, clock: FakeClock) -> None:
    regs = await selling_launch(deps, units=3, registrations=3)
    kept, lapsed = [await _reserve(deps, r) for r in regs[:2]]
    end = now_of(deps) + timedelta(hours=1)
    await update_launch(deps, L, LaunchUpdate(pickup_ends_at=end), **ACTOR)
    later = end + timedelta(hours=2)
    window = await agent_actions.extend_pickup(deps, L, kept.id, later, **AGENT)
    assert (window.ends_at, window.extended) == (later, True)
    card = await desk.lookup(deps, L, "S1", kept.code)
    assert (card.pickup_ends_at, card.pickup_extended) == (later, True)
    with pytest.raises(errors.InvalidField, match="later than the current one"):
        await agent_actions.extend_pickup(deps, L, kept.id, end + timedelta(hours=1), **AGENT)

    clock.advance(2 * 3600)
    assert await release_no_shows(deps) == 1, "only the one not extended"
    with pytest.raises(errors.Conflict, match="no_show"):
        await agent_actions.extend_pickup(deps, L, lapsed.id, later, **AGENT)
    assert (await desk.collect(deps, L, "S1", kept.code, actor="key:desk")).status == "collected"
    # A launch raising its own end later than an extension: the later one holds.
    await update_launch(deps, L, LaunchUpdate(pickup_ends_at=later + timedelta(hours=5)), **ACTOR)
    assert (await desk.lookup(deps, L, "S1", kept.code)).pickup_extended is False


async def test_resend_the_code(deps: Deps) -> None:
    regs = await selling_launch(deps, units=2, registrations=2)
    mine = await _reserve(deps, regs[0])
    with smtp_server(deps) as inbox:
        assert await send_pending(deps) == 1
        first = await agent_actions.resend_code(deps, L, mine.id, **AGENT)
        again = await agent_actions.resend_code(deps, L, mine.id, **AGENT)
        assert first != again, "each resend is its own message"
        assert await send_pending(deps) == 2
    assert len(inbox.messages) == 3
    assert all(format_code(mine.code) in str(m["Subject"]) for m in inbox.messages)
    assert len(inbox.ids()) == 3, "three Message-IDs"
    await reservations.cancel(deps, L, mine.id, registration_id=None, **ACTOR)
    with pytest.raises(errors.Conflict):
        await agent_actions.resend_code(deps, L, mine.id, **AGENT)


async def test_an_agent_books_within_the_limit_across_channels(deps: Deps) -> None:
    regs = await selling_launch(deps, units=5, registrations=2, limit=1)
    await _reserve(deps, regs[0], channel="web")
    with pytest.raises(errors.LimitReached):
        await agent_actions.book(deps, L, regs[0], "S1", "K1", **AGENT)
    booked = await agent_actions.book(deps, L, regs[1], "S1", "K1", **AGENT)
    assert (booked.channel, booked.status) == ("phone", "confirmed")
    with pytest.raises(errors.LimitReached):
        await agent_actions.book(deps, L, regs[1], "S1", "K1", **AGENT)
    with pytest.raises(errors.NotFound):
        await agent_actions.book(deps, L, 10**9, "S1", "K1", **AGENT)
    live = await deps.pool.fetch(
        "SELECT registration_id, count(*) AS n FROM reservations WHERE status = 'confirmed'"
        " GROUP BY registration_id"
    )
    assert {r["registration_id"]: r["n"] for r in live} == {regs[0]: 1, regs[1]: 1}
    await assert_consistent(deps, L)


async def test_agent_routes_over_http_and_the_timeline(
    deps: Deps,
    clock: FakeClock,
    client: AsyncTestClient,  # type: ignore[type-arg]
) -> None:
    regs = await selling_launch(deps, stores=("S1", "S2"), units=3, registrations=2, limit=2)
    end = now_of(deps) + timedelta(hours=1)
    await update_launch(deps, L, LaunchUpdate(pickup_ends_at=end), **ACTOR)
    web = await _reserve(deps, regs[0], "S1")
    agent = {"Authorization": f"Bearer {await create_key(deps.pool, 'agent', label='Sam')}"}
    base = f"/api/agent/launches/{L}"
    rbase = f"{base}/reservations/{web.id}"
    calls = {
        ("POST", "/launches/{launch_id}/reservations"): (
            f"{base}/reservations",
            {"registration_id": regs[0], "store_id": "S2", "sku_id": "K1", "reason": "by phone"},
        ),
        ("POST", "/launches/{launch_id}/reservations/{reservation_id}/move"): (
            f"{rbase}/move",
            {"store_id": "S2", "reason": "nearer home"},
        ),
        ("POST", "/launches/{launch_id}/reservations/{reservation_id}/pickup-window"): (
            f"{rbase}/pickup-window",
            {"ends_at": (end + timedelta(days=1)).isoformat(), "reason": "ill this week"},
        ),
        ("POST", "/launches/{launch_id}/reservations/{reservation_id}/resend"): (
            f"{rbase}/resend",
            {"reason": "lost the mail"},
        ),
        ("POST", "/launches/{launch_id}/registrations/{registration_id}/notes"): (
            f"{base}/registrations/{regs[0]}/notes",
            {"note": "prefers e-mail"},
        ),
        ("POST", "/launches/{launch_id}/reservations/{reservation_id}/cancel"): (
            f"{rbase}/cancel",
            {"reason": "changed mind"},
        ),
        ("GET", "/customers"): ("/api/agent/customers?q=shopper0@example.com", None),
    }
    agent_routes = {
        (method, route.path.removeprefix("/api/agent").replace(":str", "").replace(":int", ""))
        for route in client.app.routes
        if route.path.startswith("/api/agent/")
        for method in getattr(route, "methods", ())
        if method not in ("HEAD", "OPTIONS")
    }
    assert agent_routes == set(calls), "a new agent route must be walked here too"

    others = {
        role: await create_key(deps.pool, role, store_id="S1" if role == "staff" else None)
        for role in ("staff", "operator")
    }
    for (method, _), (url, body) in calls.items():
        for role, key in others.items():
            r = await client.request(method, url, json=body, headers={"X-API-Key": key})
            assert r.status_code == 403, (role, url, r.text)
        assert (await client.request(method, url, json=body)).status_code == 401
    assert await _row(deps, web.id) == ("confirmed", "S1", 0), "nothing happened"

    for (method, _), (url, body) in calls.items():
        r = await client.request(method, url, json=body, headers=agent)
        assert r.status_code in (200, 201, 202), (url, r.text)
    assert await _row(deps, web.id) == ("cancelled", "S2", None)
    await apply_pending(deps)
    await assert_consistent(deps, L)

    await deps.pool.execute(
        "UPDATE launches SET pickup_ends_at = $2 WHERE id = $1", L, now_of(deps)
    )
    await release_no_shows(deps)  # the booked one: never extended, never collected
    found = await client.get(
        "/api/agent/customers", params={"q": format_code(web.code)}, headers=agent
    )
    [story] = found.json()
    seen = {(e["kind"], e["actor"], e["channel"]) for e in story["timeline"]}
    key_actor = next(e["actor"] for e in story["timeline"] if e["kind"] == "reservation.moved")
    assert key_actor.startswith("key:")
    moved = next(e for e in story["timeline"] if e["kind"] == "reservation.moved")
    assert moved["by"] == "customer service (Sam)", "the key's label, never its id"
    assert all("key:" not in e["by"] for e in story["timeline"])
    for kind in (
        "reservation.booked_by_agent",
        "reservation.moved",
        "reservation.pickup_extended",
        "reservation.code_resent",
        "customer.note",
        "reservation.cancelled",
    ):
        assert (kind, key_actor, "phone") in seen, kind
    assert ("reservation.confirmed", f"registration:{regs[0]}", "web") in seen
    assert ("reservation.confirmed", key_actor, "phone") in seen
    assert ("reservation.no_show", "system", "system") in seen
    reasons = {e["data"].get("reason") for e in story["timeline"]}
    assert {"by phone", "nearer home", "ill this week", "lost the mail", "changed mind"} <= reasons
    assert [w["extended"] for w in story["pickup"]] == [True, False]


async def test_the_shopper_reads_a_move_in_plain_words_and_never_the_agents_note(
    deps: Deps,
) -> None:
    regs = await selling_launch(deps, stores=("S1", "S2"), units=1, registrations=1)
    mine = await _reserve(deps, regs[0], "S1")
    await agent_actions.move(deps, L, mine.id, "S2", **AGENT)
    await agent_actions.add_note(
        deps, L, regs[0], "prefers mornings; rude on the phone", actor="key:agent", channel="phone"
    )
    story = [h.what for h in await selfservice.history(deps, L, regs[0])]
    moved = next(w for w in story if "moved" in w)
    assert moved.startswith(f"Reservation {format_code(mine.code)} moved from ")
    assert moved.endswith(": customer called")
    assert not any("rude" in w or "note" in w.lower() for w in story), story
