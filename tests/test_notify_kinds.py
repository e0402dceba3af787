"""The notices nobody's request sends: check-in opens, your turn, hold expiring, pickup
reminders (enqueued by the sweeper's schedule), the lottery's not drawn / moved up,
each delivered to a real SMTP server with its subject and what it must say; several
workers enqueue each notice once; two senders at once deliver each message once."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest

from service.admin import allocations, launches
from service.admin.models import ItemCreate, LaunchCreate, LaunchUpdate, Transition
from service.clock import FakeClock
from service.customers import links
from service.deps import Deps
from service.notify import send_pending
from service.notify.schedule import (
    announce_checkin,
    enqueue_moved_up,
    notify_admitted,
    pickup_stage,
    run_schedules,
    warn_expiring_holds,
)
from service.notify.sender import enqueue_notification
from service.queue.checkin import current_rank
from service.queue.registrations import import_registrations, list_registrations
from service.queue.status import QueueWatch
from service.stock.codes import format_code
from service.stock.confirm import confirm
from service.stock.holds import reserve
from service.stock.reservations import cancel
from tests.mail import HOST, Inbox
from tests.serve import ACTOR, clients, selling_launch, tickets_for

L = "drop"
pytestmark = pytest.mark.usefixtures("public_url")


def text_of(msg: EmailMessage) -> str:
    body = msg.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def html_of(msg: EmailMessage) -> str:
    body = msg.get_body(("html",))
    assert body is not None
    return str(body.get_content())


async def topics(deps: Deps, topic: str) -> list[dict[str, object]]:
    rows = await deps.pool.fetch(
        "SELECT payload FROM outbox WHERE topic = $1 ORDER BY id", "notify." + topic
    )
    return [dict(r["payload"]) for r in rows]


async def _launch(deps: Deps, mode: str, registrations: int, to: str) -> list[int]:
    await launches.create_launch(
        deps,
        LaunchCreate(id=L, name="Phone 17", fairness_mode=mode, admit_rate=100_000),  # type: ignore[arg-type]
        **ACTOR,
    )
    await launches.add_item(deps, L, "stores", ItemCreate(id="S1", name="Store One"), **ACTOR)
    await launches.add_item(deps, L, "skus", ItemCreate(id="K1", name="Phone"), **ACTOR)
    await allocations.set_allocation(deps, L, "S1", "K1", registrations, **ACTOR)
    rows = [(i + 1, {"email": f"fan{i}@example.com"}) for i in range(registrations)]
    await import_registrations(deps, L, rows, **ACTOR)  # type: ignore[arg-type]
    for state in dict.fromkeys(("registration_closed", to)):
        await launches.transition(deps, L, Transition(action="advance", to=state), **ACTOR)  # type: ignore[arg-type]
    return [r.id for r in await list_registrations(deps, L, limit=registrations)]


async def test_check_in_opens_is_announced_to_every_verified_registration_once(
    deps: Deps, inbox: Inbox
) -> None:
    regs = await _launch(deps, "fifo", 5, to="registration_closed")
    await deps.pool.execute("UPDATE registrations SET verified_at = NULL WHERE id = $1", regs[2])
    assert await run_schedules(deps) == 0, "nothing before check-in opens"
    await launches.transition(deps, L, Transition(action="advance", to="checkin_open"), **ACTOR)

    assert [await announce_checkin(deps, L, batch=2) for _ in range(4)] == [2, 2, 0, 0]
    assert await run_schedules(deps) == 0, "the walk is done"

    assert await send_pending(deps) == 4
    assert {str(m["Subject"]) for m in inbox.messages} == {"Check-in for Phone 17 is open"}
    assert {str(m["To"]) for m in inbox.messages} == {f"fan{i}@example.com" for i in (0, 1, 3, 4)}
    msg = inbox.messages[0]
    text = text_of(msg)
    assert f"https://{HOST}/launches/{L}" in text and "order of arrival" in text
    token = re.search(r"/manage\?token=([\w.\-]+)", text)
    assert token is not None, "the self-service link is in the message"
    owner = await deps.pool.fetchval(
        "SELECT id FROM registrations WHERE email = $1", str(msg["To"])
    )
    assert links.read(deps, token.group(1), L) == owner
    assert "check in</a>" in html_of(msg)


async def _admit(watch: QueueWatch, clock: FakeClock, seconds: float = 1) -> int:
    clock.advance(seconds)
    return (await watch.refresh(L)).admitted


async def test_your_turn_goes_once_to_each_admitted_rank_with_several_workers(
    deps: Deps, clock: FakeClock, inbox: Inbox
) -> None:
    regs = await selling_launch(deps, L, units=30, registrations=30)
    await launches.update_launch(deps, L, LaunchUpdate(admit_rate=4), **ACTOR)
    await tickets_for(deps, L, regs)  # ranks 0..29 in this order
    watch = QueueWatch(deps)
    await watch.refresh(L)

    async with clients(deps, 3) as workers:
        admitted, seen = 0, []
        while admitted < 30:
            admitted = await _admit(watch, clock)
            # Three workers take the same step at once; each sees the counter advance.
            seen += await asyncio.gather(*(notify_admitted(w, L, batch=3) for w in workers))
        while sum(await asyncio.gather(*(notify_admitted(w, L, batch=3) for w in workers))):
            pass
    assert max(seen) > 0 and seen.count(0) > 0, "the workers really shared the work"

    payloads = await topics(deps, "your_turn")
    assert [p["registration"] for p in payloads] == regs, "each rank once, in queue order"
    assert await send_pending(deps) == 30
    assert {str(m["Subject"]) for m in inbox.messages} == {"It is your turn: Drop"}
    assert "before " in text_of(inbox.messages[0]) and "UTC" in text_of(inbox.messages[0])


async def test_your_turn_finds_drawn_ranks_in_postgres_and_later_ones_in_redis(
    deps: Deps, clock: FakeClock
) -> None:
    regs = await _launch(deps, "prequeue-shuffle", 6, to="checkin_open")
    await tickets_for(deps, L, regs[:4])  # the pre-queue: the draw orders these
    await launches.transition(deps, L, Transition(action="advance", to="selling"), **ACTOR)
    await tickets_for(deps, L, regs[4:])  # after the draw: ranks 4 and 5
    watch = QueueWatch(deps)
    await watch.refresh(L)
    assert await _admit(watch, clock) == 6

    assert await notify_admitted(deps, L) == 6

    ranks = {r: await current_rank(deps, L, r) for r in regs}
    by_rank = sorted(regs, key=lambda r: ranks[r] or 0)
    assert [p["registration"] for p in await topics(deps, "your_turn")] == by_rank
    assert by_rank[4:] == regs[4:]


async def test_a_hold_about_to_expire_is_warned_once_unless_confirmed_or_too_late(
    deps: Deps, clock: FakeClock, inbox: Inbox
) -> None:
    ann, bob, cy = await selling_launch(deps, L, units=3, registrations=3, hold_seconds=300)
    kept = await reserve(deps, L, ann, "S1", "K1")
    confirmed_meanwhile = await reserve(deps, L, bob, "S1", "K1")
    assert await warn_expiring_holds(deps, L) == 0, "300 s left: too early"

    clock.advance(241)  # 59 s left, inside the 60 s lead
    late = await reserve(deps, L, cy, "S1", "K1")
    assert await warn_expiring_holds(deps, L) == 2
    assert await warn_expiring_holds(deps, L) == 0, "each hold is warned once"
    await confirm(deps, L, bob, confirmed_meanwhile.hold_id)
    assert await send_pending(deps) == 2, "Ann's warning and Bob's confirmation"
    subjects = [str(m["Subject"]) for m in inbox.messages]
    assert "Your hold on K1 ends soon" in subjects
    [warning] = [m for m in inbox.messages if "ends soon" in str(m["Subject"])]
    assert warning["To"] == "shopper0@example.com"
    expires = datetime.fromtimestamp(kept.expires_ms / 1000, tz=UTC)
    assert f"{expires:%H:%M} UTC" in text_of(warning) and "K1 at S1" in text_of(warning)
    dropped = await deps.pool.fetchval(
        "SELECT last_error FROM outbox WHERE dedupe_key = $1",
        f"hold_expiring:{L}:{confirmed_meanwhile.hold_id}",
    )
    assert "confirmed" in dropped

    clock.advance(241)  # Cy's hold now has 59 s left
    assert await warn_expiring_holds(deps, L) == 1
    clock.advance(60)  # ...and the sender only gets to it after the hold ran out
    assert await send_pending(deps) == 0
    stale = await deps.pool.fetchval(
        "SELECT last_error FROM outbox WHERE dedupe_key = $1", f"hold_expiring:{L}:{late.hold_id}"
    )
    assert stale == "too late to be of use"


def test_the_pickup_stage_by_time() -> None:
    starts = datetime(2027, 2, 1, 9, tzinfo=UTC)
    ends = starts + timedelta(hours=8)
    hour = timedelta(hours=1)
    assert pickup_stage(starts - 25 * hour, starts, ends) is None
    assert pickup_stage(starts - 23 * hour, starts, ends) == "day_before"
    assert pickup_stage(starts, starts, ends) == "open"
    assert pickup_stage(ends, starts, ends) is None
    assert pickup_stage(starts + 23 * hour, starts, None) == "open"
    assert pickup_stage(starts + 25 * hour, starts, None) is None
    assert pickup_stage(starts, None, None) is None


async def test_pickup_reminders_the_day_before_and_when_pickup_opens(
    deps: Deps, clock: FakeClock, inbox: Inbox
) -> None:
    regs = await selling_launch(deps, L, units=3, registrations=3)
    made = []
    for reg in regs:
        hold = await reserve(deps, L, reg, "S1", "K1")
        made.append(await confirm(deps, L, reg, hold.hold_id))
    await cancel(deps, L, made[2].id, registration_id=regs[2], **ACTOR)
    now = datetime.fromtimestamp(clock.now_ms() / 1000, tz=UTC)
    starts = now + timedelta(hours=30)
    await launches.update_launch(
        deps,
        L,
        LaunchUpdate(pickup_starts_at=starts, pickup_ends_at=starts + timedelta(hours=8)),
        **ACTOR,
    )
    await send_pending(deps)  # confirmations and the cancellation
    inbox.messages.clear()

    assert await run_schedules(deps) == 0, "30 h ahead: not yet"
    clock.advance(7 * 3600)
    assert await run_schedules(deps) == 2, "the day before, to the two still confirmed"
    assert await run_schedules(deps) == 0
    clock.advance(23 * 3600)
    assert await run_schedules(deps) == 2, "and when pickup opens"

    assert await send_pending(deps) == 4
    by_subject: dict[str, list[EmailMessage]] = {}
    for m in inbox.messages:
        by_subject.setdefault(str(m["Subject"]), []).append(m)
    assert sorted(by_subject) == ["Pickup is open: K1 at S1", "Reminder: pick up K1 at S1"]
    assert all(len(v) == 2 for v in by_subject.values())
    reminder = by_subject["Reminder: pick up K1 at S1"][0]
    text = text_of(reminder)
    owner = regs.index(
        await deps.pool.fetchval("SELECT id FROM registrations WHERE email = $1", reminder["To"])
    )
    assert owner != 2, "no reminder for the cancelled reservation"
    assert format_code(made[owner].code) in text and f"{starts:%H:%M} UTC" in text
    assert "/calendar.ics?token=" in text
    assert any(p.get_content_type() == "image/png" for p in reminder.walk()), "the QR code"


async def test_not_drawn_and_moved_up_render_and_are_delivered_once(
    deps: Deps, inbox: Inbox
) -> None:
    ann, bob = await selling_launch(deps, L, units=1, registrations=2)
    async with deps.pool.acquire() as con:
        assert (
            await enqueue_notification(
                con, L, "not_drawn", {"registration": ann}, f"not_drawn:{L}:{ann}"
            )
            is not None
        )
        assert (
            await enqueue_notification(
                con, L, "not_drawn", {"registration": ann}, f"not_drawn:{L}:{ann}"
            )
            is None
        ), "de-duplicated"
        assert await enqueue_moved_up(con, L, bob) is not None
        assert await enqueue_moved_up(con, L, bob) is None

    assert await send_pending(deps) == 2

    by_subject = {str(m["Subject"]): m for m in inbox.messages}
    not_drawn = by_subject["You were not drawn for Drop"]
    assert not_drawn["To"] == "shopper0@example.com"
    assert "waiting list" in text_of(not_drawn) and "waiting list" in html_of(not_drawn)
    moved_up = by_subject["A place came free for you: Drop"]
    assert moved_up["To"] == "shopper1@example.com"
    assert "moved up" in text_of(moved_up) and f"https://{HOST}/launches/{L}" in text_of(moved_up)


async def test_two_senders_at_once_and_a_dropped_connection_deliver_every_message_once(
    deps: Deps, clock: FakeClock, inbox: Inbox
) -> None:
    regs = await selling_launch(deps, L, units=12, registrations=12)
    async with deps.pool.acquire() as con:
        for reg in regs:
            await enqueue_notification(
                con, L, "not_drawn", {"registration": reg}, f"not_drawn:{L}:{reg}"
            )
    inbox.drop_at = 5  # the server hangs up on the 5th message, whichever sender it is

    first = await asyncio.gather(send_pending(deps), send_pending(deps))
    clock.advance(30)
    rest = 0
    while sent := await send_pending(deps):
        rest += sent

    assert sum(first) + rest == 12
    assert len(inbox.ids()) == 12 and set(inbox.ids().values()) == {1}
    assert await deps.pool.fetchval("SELECT count(*) FROM deliveries") == 12


async def test_the_confirmation_says_when_to_pick_up_in_the_launch_zone(
    deps: Deps, inbox: Inbox
) -> None:
    """With the pickup window set: its times in the launch's zone and a calendar link;
    without: that it is to be announced, and no calendar link that would be refused."""
    regs = await selling_launch(deps, L, units=2, registrations=2, time_zone="Europe/Berlin")
    hold = await reserve(deps, L, regs[0], "S1", "K1")
    await confirm(deps, L, regs[0], hold.hold_id)
    await send_pending(deps)
    [unset] = inbox.messages
    assert "to be announced" in text_of(unset) and "calendar.ics" not in text_of(unset)
    assert "calendar.ics" not in html_of(unset)

    starts = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
    window = LaunchUpdate(pickup_starts_at=starts, pickup_ends_at=starts + timedelta(hours=8))
    await launches.update_launch(deps, L, window, **ACTOR)
    hold = await reserve(deps, L, regs[1], "S1", "K1")
    await confirm(deps, L, regs[1], hold.hold_id)
    inbox.messages.clear()
    await send_pending(deps)
    [mail] = inbox.messages
    text = text_of(mail)
    assert "from Mon 1 Feb 2027, 10:00 CET until Mon 1 Feb 2027, 18:00 CET" in text, text
    assert "/calendar.ics?token=" in text and "calendar.ics" in html_of(mail)
