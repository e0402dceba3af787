"""Pickup day: collect only within the window, a list per store and day (JSON and CSV),
and no-shows released once, their units back in stock and admission moving on."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import AsyncTestClient

from service import errors
from service.admin.launches import update_launch
from service.admin.models import LaunchUpdate
from service.auth.apikeys import create_key
from service.clock import FakeClock
from service.deps import Deps
from service.infra.redis import create_redis
from service.jobs import sweep_once
from service.notify import send_pending
from service.pickup import desk
from service.pickup.windows import now_of, release_no_shows
from service.queue.status import QueueWatch
from service.stock import confirm, holds, reservations
from service.stock.codes import format_code
from service.stock.outbox import apply_pending
from tests.mail import smtp_server
from tests.serve import ACTOR, assert_consistent, selling_launch, tickets_for

L = "drop"
HOUR = 3600.0


async def _reserve(deps: Deps, reg: int, store: str = "S1", rank: int | None = None) -> str:
    hold = await holds.reserve(deps, L, reg, store, "K1", rank=rank)
    return (await confirm.confirm(deps, L, reg, hold.hold_id)).code


async def _window(deps: Deps, starts: float | None, ends: float | None) -> None:
    """The launch's pickup window, in hours from the fake clock's now."""
    now = now_of(deps)
    await update_launch(
        deps,
        L,
        LaunchUpdate(
            pickup_starts_at=None if starts is None else now + timedelta(hours=starts),
            pickup_ends_at=None if ends is None else now + timedelta(hours=ends),
        ),
        **ACTOR,
    )


async def _status_of(deps: Deps, code: str) -> str:
    status: str = await deps.pool.fetchval("SELECT status FROM reservations WHERE code = $1", code)
    return status


async def test_collect_only_while_the_window_is_open(deps: Deps, clock: FakeClock) -> None:
    regs = await selling_launch(deps, units=5, registrations=4)
    early, late, gone = [await _reserve(deps, r) for r in regs[:3]]
    await _window(deps, 1, 3)

    card = await desk.lookup(deps, L, "S1", early)
    assert card.pickup_ends_at is not None and card.pickup_starts_at is not None
    assert card.pickup_ends_at - card.pickup_starts_at == timedelta(hours=2)
    assert not card.pickup_extended
    with pytest.raises(errors.OutsidePickupWindow) as refused:
        await desk.collect(deps, L, "S1", early, actor="key:desk")
    assert "has not opened yet" in refused.value.detail
    assert refused.value.extra["pickup_starts_at"] == card.pickup_starts_at.isoformat()

    clock.advance(2 * HOUR)
    assert (await desk.collect(deps, L, "S1", early, actor="key:desk")).status == "collected"
    rid = await deps.pool.fetchval("SELECT id FROM reservations WHERE code = $1", gone)
    await reservations.cancel(deps, L, rid, registration_id=None, actor="t", channel="web")
    with pytest.raises(errors.NotCollectable, match="was cancelled at"):
        await desk.collect(deps, L, "S1", gone, actor="key:desk")

    clock.advance(HOUR)  # the end is exclusive: at 3 h it has ended
    with pytest.raises(errors.OutsidePickupWindow, match="it has ended"):
        await desk.collect(deps, L, "S1", late, actor="key:desk")
    assert await _status_of(deps, late) == "confirmed", "refused, not released by the desk"
    assert await release_no_shows(deps, L) == 1
    with pytest.raises(errors.NotCollectable, match="released as a no-show") as released:
        await desk.collect(deps, L, "S1", late, actor="key:desk")
    assert released.value.extra["reservation_status"] == "no_show"


async def test_no_window_means_collect_any_time_and_no_release(
    deps: Deps, clock: FakeClock
) -> None:
    [reg] = await selling_launch(deps, units=1, registrations=1)
    code = await _reserve(deps, reg)
    clock.advance(1000 * HOUR)
    assert await release_no_shows(deps) == 0
    assert (await desk.collect(deps, L, "S1", code, actor="key:desk")).status == "collected"


async def test_a_no_show_returns_its_unit_once_and_admission_moves_on(
    deps: Deps, clock: FakeClock
) -> None:
    regs = await selling_launch(deps, units=1, registrations=3)
    await tickets_for(deps, L, regs)  # ranks 0, 1, 2
    watch = QueueWatch(deps)
    await watch.refresh(L)
    clock.advance(1)
    assert (await watch.refresh(L)).admitted == 1, "one unit: one admitted"
    code = await _reserve(deps, regs[0], rank=0)
    clock.advance(1)
    snap = await watch.refresh(L)
    assert (snap.admitted, snap.sold_out) == (1, True)
    await _window(deps, None, 1)

    clock.advance(HOUR - 2)
    assert await release_no_shows(deps) == 0, "not before the window ends"
    clock.advance(2)
    assert await release_no_shows(deps) == 1
    assert await release_no_shows(deps) == 0, "released once"

    row = await deps.pool.fetchrow(
        "SELECT status, unit_no, slot, released_at FROM reservations WHERE code = $1", code
    )
    assert (row["status"], row["unit_no"], row["slot"]) == ("no_show", None, None)
    assert row["released_at"] == now_of(deps)
    event = await deps.pool.fetchrow(
        "SELECT actor, channel, subject, data FROM events WHERE kind = 'reservation.no_show'"
    )
    assert (event["actor"], event["channel"]) == ("system", "system")
    assert event["subject"] == f"registration:{regs[0]}" and event["data"]["code"] == code
    counts = await assert_consistent(deps, L)
    assert counts["S1:K1"] == (1, 1, 0, 0), "the unit is free again"
    assert await deps.redis.hget(deps.keys(L).cust, str(regs[0])) is None, "and the slot"

    snap = await watch.refresh(L)
    assert (snap.admitted, snap.sold_out) == (2, False), "the next in the queue is admitted"
    await _reserve(deps, regs[1], rank=1)
    with smtp_server(deps) as inbox:
        assert await send_pending(deps) == 2  # the release and the next one's confirmation
    notice = next(m for m in inbox.messages if "released" in str(m["Subject"]))
    assert format_code(code) in str(notice["Subject"]) and notice["To"] == "shopper0@example.com"
    assert notice.get_body(("plain",)) is not None and notice.get_body(("html",)) is not None


async def test_concurrent_releases_return_each_unit_once(deps: Deps, clock: FakeClock) -> None:
    regs = await selling_launch(deps, stores=("S1", "S2"), units=15, registrations=30)
    for i, reg in enumerate(regs):
        await _reserve(deps, reg, "S1" if i % 2 else "S2")
    await _window(deps, None, 1)
    clock.advance(2 * HOUR)
    # Separate Redis clients; each release takes its own Postgres connections.
    workers = [
        Deps(deps.settings, deps.pool, create_redis(deps.settings.redis_url or ""), clock)
        for _ in range(4)
    ]
    try:
        released = await asyncio.gather(*(release_no_shows(w, batch=7) for w in workers))
    finally:
        for w in workers:
            await w.redis.aclose()
    assert sum(released) == 30
    await apply_pending(deps)
    counts = await assert_consistent(deps, L)
    assert counts == {"S1:K1": (15, 15, 0, 0), "S2:K1": (15, 15, 0, 0)}
    for kind, topic in (("reservation.no_show", None), (None, "return_unit")):
        if kind:
            n = await deps.pool.fetchval("SELECT count(*) FROM events WHERE kind = $1", kind)
        else:
            n = await deps.pool.fetchval("SELECT count(*) FROM outbox WHERE topic = $1", topic)
        assert n == 30
    notices = await deps.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE topic = 'notify.reservation_no_show'"
    )
    assert notices == 30


async def test_a_late_collect_and_the_release_race_to_one_winner(
    deps: Deps, clock: FakeClock
) -> None:
    regs = await selling_launch(deps, units=20, registrations=20)
    codes = [await _reserve(deps, r) for r in regs]
    await _window(deps, None, 1)
    # The desk's request started before the end; the sweeper's runs after it.
    desk_clock = FakeClock(clock.now_ms() + int(HOUR * 1000) - 1)
    clock.advance(HOUR)
    desk_deps = Deps(
        deps.settings, deps.pool, create_redis(deps.settings.redis_url or ""), desk_clock
    )
    try:
        results = await asyncio.gather(
            release_no_shows(deps, L, batch=1),
            *(desk.collect(desk_deps, L, "S1", c, actor="key:late") for c in codes),
            return_exceptions=True,
        )
    finally:
        await desk_deps.redis.aclose()
    released, collects = results[0], results[1:]
    assert isinstance(released, int)
    for code, outcome in zip(codes, collects, strict=True):
        status = await _status_of(deps, code)
        if isinstance(outcome, desk.PickupCard):
            assert status == "collected"
        else:
            assert isinstance(outcome, errors.NotCollectable), outcome
            assert status == "no_show"
    assert released == sum(1 for o in collects if not isinstance(o, desk.PickupCard))
    await apply_pending(deps)
    counts = await assert_consistent(deps, L)
    assert counts["S1:K1"][1] == released, "each released unit is free, once"


async def test_the_sweeper_releases_no_shows(deps: Deps, clock: FakeClock) -> None:
    [reg] = await selling_launch(deps, units=1, registrations=1)
    code = await _reserve(deps, reg)
    await _window(deps, None, 1)
    clock.advance(HOUR)
    await sweep_once(deps)
    assert await _status_of(deps, code) == "no_show"
    assert (await assert_consistent(deps, L))["S1:K1"] == (1, 1, 0, 0)


def _day(at: datetime) -> str:
    return at.date().isoformat()


async def test_the_pickup_list_per_store_and_day(
    deps: Deps,
    clock: FakeClock,
    client: AsyncTestClient,  # type: ignore[type-arg]
) -> None:
    regs = await selling_launch(deps, stores=("S1", "S2"), units=5, registrations=5)
    await deps.pool.execute(
        "UPDATE registrations SET name = $2 WHERE id = $1", regs[0], "=HYPERLINK(evil)"
    )
    first, second, third = [await _reserve(deps, r) for r in regs[:3]]
    elsewhere = await _reserve(deps, regs[3], "S2")
    midnight = datetime.fromtimestamp(clock.now_ms() // 86_400_000 * 86_400, tz=UTC)
    clock.set(int((midnight + timedelta(hours=9)).timestamp() * 1000))
    day1 = now_of(deps)
    await _window(deps, 0, 24 + 10)  # 09:00 on day 1 until 19:00 on day 2
    await desk.collect(deps, L, "S1", first, actor="key:desk")
    clock.advance(24 * HOUR)
    day2 = now_of(deps)
    await desk.collect(deps, L, "S1", second, actor="key:desk")

    staff = {"Authorization": f"Bearer {await create_key(deps.pool, 'staff', store_id='S1')}"}
    base = f"/api/staff/launches/{L}"
    mid = (await client.get(f"{base}/pickups", params={"day": _day(day2)}, headers=staff)).json()
    assert (mid["expected"], mid["collected"], mid["outstanding"], mid["no_show"]) == (2, 1, 1, 0)
    assert {r["code"] for r in mid["reservations"]} == {second, third}
    assert elsewhere not in str(mid), "another store's reservations are not listed"

    clock.advance(10 * HOUR)
    assert await release_no_shows(deps) == 2, "the third, and the one at S2"
    by_day = {d: await desk.pickup_list(deps, L, "S1", d.date()) for d in (day1, day2)}
    assert [(c.code, c.status) for c in by_day[day1].reservations] == [(first, "collected")]
    done = by_day[day2]
    assert (done.expected, done.collected, done.outstanding, done.no_show) == (2, 1, 0, 1)
    everything = await desk.pickup_list(deps, L, "S1")
    assert (everything.expected, everything.collected, everything.no_show) == (3, 2, 1)

    reply = await client.get(f"{base}/pickups.csv", params={"day": _day(day1)}, headers=staff)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/csv")
    assert "attachment" in reply.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert list(rows[0]) == list(desk.CSV_COLUMNS)
    assert [(r["code"], r["sku_id"], r["status"]) for r in rows] == [
        (format_code(first), "K1", "collected")
    ]
    assert rows[0]["customer_name"] == "'=HYPERLINK(evil)", "no formula runs in a spreadsheet"
    bad = await client.get(f"{base}/pickups", params={"day": "yesterday"}, headers=staff)
    assert bad.status_code == 400


async def test_staff_of_another_store_or_launch_find_nothing(
    deps: Deps,
    client: AsyncTestClient,  # type: ignore[type-arg]
) -> None:
    """Every staff route, walked with store A's key on store B's reservation: 404."""
    regs = await selling_launch(deps, stores=("S1", "S2"), units=2, registrations=2)
    theirs = await _reserve(deps, regs[0], "S2")
    s1 = {"Authorization": f"Bearer {await create_key(deps.pool, 'staff', store_id='S1')}"}
    other_launch = await create_key(deps.pool, "staff", store_id="S2", launch_id="other")
    s2_elsewhere = {"Authorization": f"Bearer {other_launch}"}
    base = f"/api/staff/launches/{L}"
    calls = {
        ("GET", "/reservations/{code}"): f"{base}/reservations/{theirs}",
        ("POST", "/reservations/{code}/collect"): f"{base}/reservations/{theirs}/collect",
        ("GET", "/pickups"): f"{base}/pickups?store=S2",
        ("GET", "/pickups.csv"): f"{base}/pickups.csv?store=S2",
    }
    staff_routes = {
        (method, route.path.removeprefix("/api/staff/launches/{launch_id:str}").replace(":str", ""))
        for route in client.app.routes
        if route.path.startswith("/api/staff/")
        for method in getattr(route, "methods", ())
        if method not in ("HEAD", "OPTIONS")
    }
    assert staff_routes == set(calls), "a new staff route must be walked here too"
    for (method, _), url in calls.items():
        for key in (s1, s2_elsewhere):
            reply = await client.request(method, url, headers=key)
            assert reply.status_code == 404, (method, url, reply.text)
            assert reply.json()["type"].endswith("/not-found")
    assert await _status_of(deps, theirs) == "confirmed"
    assert (await client.get(f"{base}/pickups", headers=s1)).json()["expected"] == 0
