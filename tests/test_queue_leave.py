"""Leaving the queue. A shopper who gave up could only close the page: their place
was still admitted in its turn and held a window (room under the active cap, a unit
promised) until it lapsed, so everyone behind waited for a turn nobody would use.
Now a place given up, in line or in an unused turn, is passed by at once."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from service import errors
from service.admin import allocations, launches
from service.admin.models import ItemCreate, LaunchCreate, Transition
from service.clock import FakeClock
from service.customers import selfservice
from service.deps import Deps
from service.queue import checkin, lifecycle, places, registrations, tickets
from service.queue.leave import leave
from service.queue.status import QueueWatch
from service.queue.tickets import TicketClaims
from service.stock import holds

A = {"actor": "test", "channel": "admin"}
L = "lv"


async def _queue(deps: Deps, n: int, **kw: object) -> tuple[list[int], list[TicketClaims]]:
    await launches.create_launch(deps, LaunchCreate(id=L, name="L", **kw), **A)  # type: ignore[arg-type]
    await launches.add_item(deps, L, "stores", ItemCreate(id="S1", name="S"), **A)
    await launches.add_item(deps, L, "skus", ItemCreate(id="K1", name="K"), **A)
    await allocations.set_allocation(deps, L, "S1", "K1", 100, **A)
    await registrations.import_registrations(
        deps, L, [(i, {"email": f"p{i}@example.com"}) for i in range(n)], **A
    )
    regs = [r.id for r in await registrations.list_registrations(deps, L, limit=n)]
    await launches.transition(deps, L, Transition(action="advance", to="checkin_open"), **A)
    claims = [tickets.read(deps, (await checkin.check_in(deps, L, r)).ticket, L) for r in regs]
    return regs, claims


async def _sell(deps: Deps) -> None:
    await launches.transition(deps, L, Transition(action="advance", to="selling"), **A)


async def _tick(watch: QueueWatch, clock: FakeClock, seconds: float = 1.0) -> None:
    if L not in watch.snapshots:
        await watch.refresh(L)  # admission counts time from its first tick
    clock.advance(seconds)
    await watch.refresh(L)


async def test_a_turn_handed_back_lets_the_next_in_at_once(deps: Deps, clock: FakeClock) -> None:
    regs, claims = await _queue(
        deps, 3, fairness_mode="fifo", admit_rate=10.0, active_cap=1, admission_window_seconds=120
    )
    await _sell(deps)
    watch = QueueWatch(deps)
    await _tick(watch, clock)
    assert [(await watch.status(c)).state for c in claims] == ["admitted", "waiting", "waiting"]

    await leave(deps, L, regs[0], channel="web")
    await _tick(watch, clock, 0.2)  # not the window's 120 s

    assert [(await watch.status(c)).state for c in claims] == ["left", "admitted", "waiting"]
    snap = watch.snapshots[L]
    assert (snap.admitted, snap.active, snap.lapsed, snap.left) == (2, 1, 1, 1)
    with pytest.raises(errors.NotAdmitted):
        await holds.reserve(deps, L, regs[0], "S1", "K1", rank=0)


async def test_a_place_left_in_line_is_passed_by(deps: Deps, clock: FakeClock) -> None:
    regs, claims = await _queue(
        deps, 4, fairness_mode="fifo", admit_rate=10.0, active_cap=1, admission_window_seconds=120
    )
    await _sell(deps)
    watch = QueueWatch(deps)
    await _tick(watch, clock)
    await leave(deps, L, regs[1], channel="app")  # waiting, one ahead
    await leave(deps, L, regs[2], channel="app")
    await _tick(watch, clock, 0.2)
    assert [(await watch.status(c)).state for c in claims] == [
        "admitted",
        "left",
        "left",
        "waiting",
    ]

    hold = await holds.reserve(deps, L, regs[0], "S1", "K1", rank=0)
    await holds.release(deps, L, regs[0], hold.hold_id)
    await _tick(watch, clock, 0.2)

    assert (await watch.status(claims[3])).state == "admitted", "passed by two left places"
    assert watch.snapshots[L].active == 1, "the places left took no window"
    with pytest.raises(errors.NotAdmitted):
        await holds.reserve(deps, L, regs[1], "S1", "K1", rank=1)
    rows = await deps.pool.fetch(
        "SELECT channel, data FROM events WHERE kind = 'queue.left' ORDER BY id"
    )
    assert [(r["channel"], r["data"]) for r in rows] == [
        ("app", {"rank": 1, "from": "waiting"}),
        ("app", {"rank": 2, "from": "waiting"}),
    ]


async def test_what_cannot_be_left_and_leaving_twice(deps: Deps, clock: FakeClock) -> None:
    regs, _ = await _queue(
        deps, 3, fairness_mode="fifo", admit_rate=10.0, active_cap=2, admission_window_seconds=30
    )
    with pytest.raises(errors.NotFound):
        await leave(deps, L, 999_999, channel="web")
    await _sell(deps)
    watch = QueueWatch(deps)
    await _tick(watch, clock)
    await holds.reserve(deps, L, regs[0], "S1", "K1", rank=0)
    with pytest.raises(errors.Conflict, match="held for you"):
        await leave(deps, L, regs[0], channel="web")
    assert await leave(deps, L, regs[2], channel="web") == 2
    assert await leave(deps, L, regs[2], channel="web") == 2
    await _tick(watch, clock, 31)  # rank 1's window lapses unused
    with pytest.raises(errors.Conflict, match="over already"):
        await leave(deps, L, regs[1], channel="web")

    n = await deps.pool.fetchval("SELECT count(*) FROM events WHERE kind = 'queue.left'")
    assert n == 1, "leaving twice is leaving once"


async def test_the_prequeue_can_be_left_before_the_draw(deps: Deps, clock: FakeClock) -> None:
    regs, _ = await _queue(deps, 6, admit_rate=50.0, active_cap=100)
    assert await leave(deps, L, regs[2], channel="web") is None
    with pytest.raises(errors.LeftQueue):
        await checkin.check_in(deps, L, regs[2])
    await _sell(deps)  # the draw ranks everyone, then gives up the leaver's rank
    watch = QueueWatch(deps)
    await _tick(watch, clock)

    with pytest.raises(errors.LeftQueue):
        await checkin.check_in(deps, L, regs[2])
    drawn = [
        tickets.read(deps, (await checkin.check_in(deps, L, r)).ticket, L)
        for r in regs
        if r != regs[2]
    ]
    assert {(await watch.status(c)).state for c in drawn} == {"admitted"}
    snap = watch.snapshots[L]
    assert (snap.admitted, snap.active, snap.left) == (6, 5, 1)


async def test_leaving_the_prequeue_shows_left_on_every_ticket_before_the_draw(
    deps: Deps, clock: FakeClock
) -> None:
    regs, claims = await _queue(deps, 3, admit_rate=50.0, active_cap=100)
    watch = QueueWatch(deps)
    await _tick(watch, clock)
    assert (await watch.status(claims[1])).state == "prequeue"
    assert await leave(deps, L, regs[1], channel="web") is None  # on one device
    assert await leave(deps, L, regs[1], channel="app") is None  # and again on another
    await _tick(watch, clock)

    # The ticket another device holds (or another process reads) says so, not "prequeue".
    assert [(await watch.status(c)).state for c in claims] == ["prequeue", "left", "prequeue"]
    assert (await QueueWatch(deps).status(claims[1])).state == "left"
    mine = await selfservice.view(deps, L, regs[1], QueueWatch(deps))  # "My registration"
    assert mine.queue is not None and mine.queue.state == "left"
    n = await deps.pool.fetchval("SELECT count(*) FROM events WHERE kind = 'queue.left'")
    assert n == 1, "leaving the pre-queue twice is leaving once"


async def test_a_rebuilt_queue_keeps_the_places_given_up(deps: Deps, clock: FakeClock) -> None:
    regs, claims = await _queue(
        deps, 4, fairness_mode="fifo", admit_rate=10.0, active_cap=1, admission_window_seconds=120
    )
    await _sell(deps)
    watch = QueueWatch(deps)
    await _tick(watch, clock)
    await leave(deps, L, regs[2], channel="web")
    await _tick(watch, clock, 6)
    await lifecycle.save_counters(deps, watch.counters())  # as the watch does every ~5 s
    await places.drain_places(deps, L)  # as the sweeper does every second
    keys = [k async for k in deps.redis.scan_iter(match=f"{deps.settings.redis_prefix}*")]
    await deps.redis.delete(*keys)
    await watch.load_active()
    await _tick(watch, clock, 0.2)  # restored from Postgres
    with pytest.raises(errors.LeftQueue):
        await checkin.check_in(deps, L, regs[2])
    assert (await watch.status(claims[2])).state == "left"


async def test_leaving_over_http_and_coming_back(
    client: AsyncTestClient,
    admin_key: str,  # type: ignore[type-arg]
) -> None:
    admin = {"Authorization": f"Bearer {admin_key}"}
    base = f"/api/admin/launches/{L}"
    r = await client.post("/api/admin/launches", json={"id": L, "name": "L"}, headers=admin)
    assert r.status_code == 201, r.text
    r = await client.post(
        f"{base}/registrations/import",
        content="email\nshopper@example.com\n",
        headers={**admin, "Content-Type": "text/csv"},
    )
    assert r.status_code in (200, 201), r.text
    [reg] = (await client.get(f"{base}/registrations", headers=admin)).json()
    token = (await client.post(f"{base}/registrations/{reg['id']}/token", headers=admin)).json()
    shopper = {"Authorization": f"Bearer {token['token']}"}
    r = await client.post(
        f"{base}/transitions", json={"action": "advance", "to": "checkin_open"}, headers=admin
    )
    assert r.status_code == 200, r.text
    api = f"/api/launches/{L}/queue"
    r = await client.post(f"{api}/checkin", headers=shopper)
    assert r.status_code == 200
    assert "fd_ticket" in client.cookies
    other_device = {"Authorization": f"Bearer {r.json()['ticket']}"}
    r = await client.get(f"{api}/status", headers=other_device)
    assert r.json()["status"]["state"] == "prequeue"

    r = await client.post(f"{api}/leave", headers=shopper)

    assert r.status_code == 200, r.text
    assert r.json()["status"]["state"] == "left"
    # The ticket another device keeps: "left" before the draw too, never "prequeue".
    r = await client.get(f"{api}/status", headers=other_device)
    assert r.json()["status"]["state"] == "left", r.text
    assert "fd_ticket" not in client.cookies
    r = await client.post(f"{api}/checkin", headers=shopper)
    assert r.status_code == 409
    assert r.json()["type"].endswith("/left-queue")
    assert "cannot queue again" in r.json()["detail"]
    assert (await client.post(f"{api}/leave", headers=shopper)).status_code == 200
