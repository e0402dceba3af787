"""Notifications: outbox → a real SMTP server (aiosmtpd on loopback).

What is proven: every kind renders from what Postgres holds at send time (text + HTML,
the reservation code and its QR code inline); a dedupe key enqueues once; a sender that
dies mid-batch — the SMTP connection dropped, the task cancelled mid-send — still gets
every message delivered and none twice; the one window the design admits (accepted by
the server, crash before the commit) re-sends with the same Message-ID; an unreachable
server backs off exponentially on the injected clock, then delivers.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import asyncpg
import msgspec
import pytest

from service.clock import FakeClock
from service.deps import Deps
from service.jobs import sweep_once
from service.notify import KINDS, enqueue_notification, send_pending
from service.notify.sender import MAX_ATTEMPTS
from service.notify.templates import kinds, qr_png
from service.stock.codes import format_code
from service.stock.confirm import confirm
from service.stock.holds import reserve
from service.stock.reservations import cancel
from tests.mail import HOST, Inbox, smtp_server
from tests.serve import ACTOR, free_port, selling_launch

L = "drop"
pytestmark = pytest.mark.usefixtures("public_url")


async def confirmed(deps: Deps, n: int) -> list[int]:
    """`n` confirmed reservations (each enqueues its notice); returns registration ids."""
    regs = await selling_launch(deps, L, units=n, registrations=n)
    for reg in regs:
        hold = await reserve(deps, L, reg, "S1", "K1")
        await confirm(deps, L, reg, hold.hold_id)
    return regs


async def outbox(deps: Deps) -> list[asyncpg.Record]:
    return await deps.pool.fetch(
        "SELECT id, topic, attempts, processed_at, next_attempt_at, last_error"
        " FROM outbox WHERE topic LIKE 'notify.%' ORDER BY id"
    )


def at(clock: FakeClock, seconds: float = 0) -> datetime:
    return datetime.fromtimestamp(clock.now_ms() / 1000, tz=UTC) + timedelta(seconds=seconds)


def parts(msg: EmailMessage) -> tuple[str, str, EmailMessage | None]:
    """(plain text, HTML, the inline image part or None)."""
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    images = [p for p in msg.walk() if p.get_content_maintype() == "image"]
    assert len(images) <= 1
    return str(text.get_content()), str(html.get_content()), images[0] if images else None


async def test_a_confirmed_reservation_is_mailed_with_its_code_and_qr_code(
    deps: Deps, inbox: Inbox
) -> None:
    regs = await selling_launch(deps, L, units=1, registrations=1)
    hold = await reserve(deps, L, regs[0], "S1", "K1")
    reservation = await confirm(deps, L, regs[0], hold.hold_id)
    [row] = await outbox(deps)

    assert await send_pending(deps) == 1

    [msg] = inbox.messages
    assert msg["Message-ID"] == f"<outbox-{row['id']}@{HOST}>"
    assert msg["To"] == "shopper0@example.com"
    assert format_code(reservation.code) in msg["Subject"]
    text, html, image = parts(msg)
    assert format_code(reservation.code) in text and format_code(reservation.code) in html
    assert f"https://{HOST}/launches/{L}" in text
    assert image is not None and image.get_content_type() == "image/png"
    assert image.get_content() == qr_png(reservation.code)
    cid = str(image["Content-ID"]).strip("<>")
    assert f'src="cid:{cid}"' in html
    delivery = await deps.pool.fetchrow("SELECT message_id, recipient FROM deliveries")
    assert delivery is not None and tuple(delivery) == (msg["Message-ID"], "shopper0@example.com")
    [done] = await outbox(deps)
    assert done["processed_at"] is not None and done["attempts"] == 1
    assert (
        await deps.pool.fetchval(
            "SELECT count(*) FROM events WHERE kind = 'notification.sent' AND subject = $1",
            f"registration:{regs[0]}",
        )
        == 1
    )

    assert await send_pending(deps) == 0, "sent once, never again"
    assert len(inbox.messages) == 1


async def test_every_kind_renders_what_postgres_holds_when_it_is_sent(
    deps: Deps, inbox: Inbox
) -> None:
    assert set(KINDS) == kinds(), "every kind has a loader and a template pair"
    ann, bob = await selling_launch(deps, L, units=1, registrations=2)
    await deps.pool.execute("UPDATE registrations SET name = 'Ann Example' WHERE id = $1", ann)
    async with deps.pool.acquire() as con, con.transaction():
        link = f"https://{HOST}/api/launches/{L}/verify?token=t&x=1"
        await enqueue_notification(con, L, "verify_email", {"registration": ann, "link": link})
        await enqueue_notification(con, L, "registration_confirmed", {"registration": bob})
    hold = await reserve(deps, L, ann, "S1", "K1")
    reservation = await confirm(deps, L, ann, hold.hold_id)
    await cancel(deps, L, reservation.id, registration_id=ann, **ACTOR)
    # Loaded at send time: the new name is in every message.
    await deps.pool.execute("UPDATE launches SET name = 'Phone 17 & Co' WHERE id = $1", L)

    assert await send_pending(deps) == 3

    by_subject = {str(m["Subject"]): m for m in inbox.messages}
    code = format_code(reservation.code)
    assert set(by_subject) == {
        "Confirm your e-mail address for Phone 17 & Co",
        "You are registered for Phone 17 & Co",
        f"Your reservation {code} is cancelled",
    }
    verify = by_subject["Confirm your e-mail address for Phone 17 & Co"]
    assert verify["To"] == "Ann Example <shopper0@example.com>"
    text, html, image = parts(verify)
    assert link in text and 'href="' + link.replace("&", "&amp;") + '"' in html
    assert "Hello Ann Example," in text and image is None
    assert "Phone 17 &amp; Co" in html, "HTML is escaped"
    cancelled_text, _, _ = parts(by_subject[f"Your reservation {code} is cancelled"])
    assert code in cancelled_text and "S1" in cancelled_text
    # Its confirmation was still pending when it was cancelled: dropped, not mailed.
    rows = {r["topic"]: r for r in await outbox(deps)}
    stale = rows["notify.reservation_confirmed"]
    assert stale["processed_at"] is not None and "cancelled" in stale["last_error"]
    assert await deps.pool.fetchval("SELECT count(*) FROM deliveries") == 3


async def test_a_dedupe_key_enqueues_once(deps: Deps, inbox: Inbox) -> None:
    [reg] = await selling_launch(deps, L, units=1, registrations=1)
    payload = {"registration": reg}
    async with deps.pool.acquire() as con:
        first = await enqueue_notification(con, L, "registration_confirmed", payload, "reg:1")
        again = await enqueue_notification(con, L, "registration_confirmed", payload, "reg:1")
        other = await enqueue_notification(con, L, "registration_confirmed", payload, "reg:2")
        with pytest.raises(ValueError, match="unknown notification kind"):
            await enqueue_notification(con, L, "no_such_kind", payload)
    assert first is not None and again is None and other is not None
    assert await send_pending(deps) == 2
    assert len(inbox.ids()) == 2


async def test_a_dropped_connection_mid_batch_delivers_everything_once(
    deps: Deps, inbox: Inbox, clock: FakeClock
) -> None:
    await confirmed(deps, 8)
    inbox.drop_at = 4  # the server hangs up on the 4th message

    assert await send_pending(deps) == 3, "the batch stops where the server went away"
    rows = await outbox(deps)
    assert [r["attempts"] for r in rows] == [1, 1, 1, 1, 0, 0, 0, 0]
    assert rows[3]["processed_at"] is None and rows[3]["last_error"]
    assert rows[3]["next_attempt_at"] == at(clock, 30)

    assert await send_pending(deps) == 4, "the rest go on the next run; the failed one waits"
    clock.advance(30)
    assert await send_pending(deps) == 1

    ids = inbox.ids()
    assert sorted(ids) == sorted(f"<outbox-{r['id']}@{HOST}>" for r in rows)
    assert set(ids.values()) == {1}, "no Message-ID reached the server twice"
    assert await deps.pool.fetchval("SELECT count(*) FROM deliveries") == 8
    assert all(r["processed_at"] is not None for r in await outbox(deps))


async def test_a_sender_cancelled_mid_send_delivers_everything_once(
    deps: Deps, inbox: Inbox
) -> None:
    await confirmed(deps, 6)
    inbox.stall_at = 3  # the 3rd message hangs after DATA, before the server's answer
    task = asyncio.create_task(send_pending(deps))
    assert await asyncio.to_thread(inbox.stalled.wait, 30)
    task.cancel()  # the process dies here
    with pytest.raises(asyncio.CancelledError):
        await task
    inbox.release.set()

    assert len(inbox.messages) == 2
    rows = await outbox(deps)
    assert [r["processed_at"] is not None for r in rows] == [True, True] + [False] * 4
    assert rows[2]["attempts"] == 0, "the claim rolled back with the process"

    assert await send_pending(deps) == 4
    ids = inbox.ids()
    assert sorted(ids) == sorted(f"<outbox-{r['id']}@{HOST}>" for r in rows)
    assert set(ids.values()) == {1}, "no Message-ID reached the server twice"


async def test_a_crash_after_the_server_accepted_resends_with_the_same_message_id(
    deps: Deps, inbox: Inbox
) -> None:
    """The documented at-least-once window, made to happen: accepted, then no commit."""
    await confirmed(deps, 3)
    assert deps.settings.database_url is not None
    blocker = await asyncpg.connect(
        deps.settings.database_url, server_settings={"search_path": deps.settings.db_schema}
    )
    try:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("LOCK TABLE deliveries IN SHARE MODE")  # recording must wait
        task = asyncio.create_task(send_pending(deps))
        for _ in range(3000):
            if await blocker.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
                blocker.get_server_pid(),
            ):
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the sender never reached the recording step")
        assert len(inbox.messages) == 1, "the server accepted the first message"
        task.cancel()  # the process dies between the 250 and the commit
        with pytest.raises(asyncio.CancelledError):
            await task
        await tx.rollback()
    finally:
        await blocker.close()

    assert await send_pending(deps) == 3
    rows = await outbox(deps)
    first, *rest = (f"<outbox-{r['id']}@{HOST}>" for r in rows)
    assert inbox.ids() == Counter({first: 2, **dict.fromkeys(rest, 1)})
    assert await deps.pool.fetchval("SELECT count(*) FROM deliveries") == 3


async def test_an_unreachable_server_backs_off_then_delivers(deps: Deps, clock: FakeClock) -> None:
    [reg] = await selling_launch(deps, L, units=1, registrations=1)
    async with deps.pool.acquire() as con:
        await enqueue_notification(con, L, "registration_confirmed", {"registration": reg})
    port = free_port()  # nothing listens here
    deps.settings = msgspec.structs.replace(deps.settings, smtp_port=port)

    assert await send_pending(deps) == 0
    [row] = await outbox(deps)
    assert row["attempts"] == 1 and row["next_attempt_at"] == at(clock, 30)
    assert row["processed_at"] is None and row["last_error"]

    clock.advance(29)
    assert await send_pending(deps) == 0
    [row] = await outbox(deps)
    assert row["attempts"] == 1, "not tried before its time"

    clock.advance(1)
    assert await send_pending(deps) == 0
    [row] = await outbox(deps)
    assert row["attempts"] == 2 and row["next_attempt_at"] == at(clock, 60), "doubled"

    with smtp_server(deps, port) as box:
        clock.advance(60)
        assert await send_pending(deps) == 1
    [row] = await outbox(deps)
    assert row["attempts"] == 3 and row["processed_at"] is not None
    assert len(box.messages) == 1


async def test_after_the_last_attempt_a_message_is_dropped_with_its_reason(deps: Deps) -> None:
    [reg] = await selling_launch(deps, L, units=1, registrations=1)
    async with deps.pool.acquire() as con:
        await enqueue_notification(con, L, "registration_confirmed", {"registration": reg})
        await enqueue_notification(
            con, L, "reservation_cancelled", {"registration": reg, "reservation": 999}
        )
    await deps.pool.execute(
        "UPDATE outbox SET attempts = $1 WHERE topic = 'notify.registration_confirmed'",
        MAX_ATTEMPTS - 1,
    )
    deps.settings = msgspec.structs.replace(deps.settings, smtp_port=free_port())

    await send_pending(deps)
    await send_pending(deps)

    rows = {r["topic"]: r for r in await outbox(deps)}
    assert "gave up" in rows["notify.registration_confirmed"]["last_error"]
    assert "reservation is gone" in rows["notify.reservation_cancelled"]["last_error"]
    assert all(r["processed_at"] is not None for r in rows.values())
    assert (
        await deps.pool.fetchval("SELECT count(*) FROM events WHERE kind = 'notification.dropped'")
        == 2
    )
    assert await deps.pool.fetchval("SELECT count(*) FROM deliveries") == 0


async def test_the_sweeper_sends_when_notify_is_on_and_leaves_stock_rows_alone(
    deps: Deps, inbox: Inbox
) -> None:
    await confirmed(deps, 1)
    deps.settings = msgspec.structs.replace(deps.settings, notify=False)
    await sweep_once(deps)
    assert inbox.messages == []
    deps.settings = msgspec.structs.replace(deps.settings, notify=True)
    await sweep_once(deps)
    assert len(inbox.messages) == 1

    stock_id = await deps.pool.fetchval(
        "INSERT INTO outbox (launch_id, topic, payload) VALUES ('ghost', 'add_units', '{}')"
        " RETURNING id"
    )
    assert await send_pending(deps) == 0
    row = await deps.pool.fetchrow(
        "SELECT attempts, processed_at FROM outbox WHERE id = $1", stock_id
    )
    assert row is not None and tuple(row) == (0, None)
