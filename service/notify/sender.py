"""The sender: due `notify.*` outbox rows → loaded, rendered, handed to SMTP, recorded.

Each message is one transaction: claim the row (FOR UPDATE SKIP LOCKED), load what
its templates need, send, then record the delivery and mark the row processed before
committing. A failed send records the error and a back-off instead. See the package
docstring for what a crash can and cannot do.

Adding a kind: a template pair `templates/<kind>.txt|html` and an entry in `KINDS`
(or in `letters.LETTERS`) naming the loader that gathers its data (reuse one when it
needs nothing new). A payload with `stale_after_ms` is dropped once that time passes;
one naming a `registration` gets the shopper's self-service link (`manage_url`).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import asyncpg

from service import subjects
from service.customers import links
from service.deps import Deps
from service.infra.db import Conn
from service.moments import when
from service.notify.mailer import CONNECTION_ERRORS, Mailer, compose, mail_domain
from service.notify.templates import qr_png, render
from service.stock.codes import format_code

log = logging.getLogger(__name__)

TOPIC_PREFIX = "notify."
BACKOFF_BASE_SECONDS = 30.0
BACKOFF_CAP_SECONDS = 3600.0
MAX_ATTEMPTS = 12  # ≈ 5 hours of retrying, then the row is dropped with its last error


class Undeliverable(Exception):
    """This message can never be sent (its data is gone, the address is refused)."""


@dataclass
class Letter:
    """What a loader found: the recipient and what the kind's templates need."""

    to: Address
    context: dict[str, Any]
    images: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    """Inline PNGs by name → (file name, bytes); the HTML shows one as `cid:{{ cid.<name> }}`."""


Loader = Callable[[Conn, str, dict[str, Any]], Awaitable[Letter]]

_REGISTRATION = """
SELECT r.email, r.name, l.id AS launch_id, l.name AS launch_name, l.time_zone
FROM registrations r JOIN launches l ON l.id = r.launch_id
WHERE r.launch_id = $1 AND r.id = $2
"""

_RESERVATION = """
SELECT v.id, v.code, v.status, s.name AS store, k.name AS sku,
       l.pickup_starts_at, GREATEST(l.pickup_ends_at, v.pickup_ends_at) AS pickup_ends_at
FROM reservations v
JOIN launches l ON l.id = v.launch_id
JOIN stores s ON s.launch_id = v.launch_id AND s.id = v.store_id
JOIN skus k ON k.launch_id = v.launch_id AND k.id = v.sku_id
WHERE v.launch_id = $1 AND v.id = $2 AND v.registration_id = $3
"""


async def load_registration(con: Conn, launch_id: str, p: dict[str, Any]) -> Letter:
    row = await con.fetchrow(_REGISTRATION, launch_id, int(p["registration"]))
    if row is None:
        raise Undeliverable("the registration is gone")
    name = " ".join((row["name"] or "").split())
    try:
        to = Address(display_name=name, addr_spec=row["email"].strip())
    except (ValueError, IndexError, HeaderParseError) as exc:
        raise Undeliverable(f"not an address: {row['email']!r}") from exc
    context = {
        "greeting_name": name or to.addr_spec,
        "email": to.addr_spec,
        "launch": {
            "id": row["launch_id"],
            "name": row["launch_name"],
            "time_zone": row["time_zone"],
        },
    }
    return Letter(to=to, context=context)


async def load_verify_email(con: Conn, launch_id: str, p: dict[str, Any]) -> Letter:
    letter = await load_registration(con, launch_id, p)
    letter.context["link"] = str(p["link"])
    return letter


async def load_reservation(con: Conn, launch_id: str, p: dict[str, Any]) -> Letter:
    letter = await load_registration(con, launch_id, p)
    zone = letter.context["launch"]["time_zone"]
    row = await con.fetchrow(_RESERVATION, launch_id, int(p["reservation"]), int(p["registration"]))
    if row is None:
        raise Undeliverable("the reservation is gone")
    letter.context["reservation"] = {
        "id": row["id"],
        "code": format_code(row["code"]),
        "raw_code": row["code"],
        "status": row["status"],
        "store": row["store"],
        "sku": row["sku"],
        # None: not announced yet (the pickup reminders say it when it is).
        "pickup_starts": row["pickup_starts_at"] and when(row["pickup_starts_at"], zone),
        "pickup_ends": row["pickup_ends_at"] and when(row["pickup_ends_at"], zone),
    }
    return letter


async def load_confirmed_reservation(con: Conn, launch_id: str, p: dict[str, Any]) -> Letter:
    letter = await load_reservation(con, launch_id, p)
    reservation = letter.context["reservation"]
    if reservation["status"] != "confirmed":
        # Cancelled (or collected) before this went out: its cancellation notice follows.
        raise Undeliverable(f"the reservation is {reservation['status']} by now")
    code = reservation["raw_code"]
    letter.images["qr"] = (f"reservation-{code}.png", qr_png(code))
    return letter


async def load_lottery(con: Conn, launch_id: str, p: dict[str, Any]) -> Letter:
    letter = await load_registration(con, launch_id, p)
    letter.context["waitlist_position"] = p.get("waitlist_position")
    return letter


KINDS: dict[str, Loader] = {
    "verify_email": load_verify_email,
    "registration_confirmed": load_registration,
    "reservation_confirmed": load_confirmed_reservation,
    "reservation_cancelled": load_reservation,
    "lottery_invited": load_lottery,
    "reservation_no_show": load_reservation,
}
"""Kind (the topic without `notify.`) → the loader of its data. Each has templates."""


_ENQUEUE = (
    "INSERT INTO outbox (launch_id, topic, payload, dedupe_key) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (dedupe_key) DO NOTHING"
)


def _topic(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r} (known: {', '.join(sorted(KINDS))})")
    return TOPIC_PREFIX + kind


async def enqueue_notification(
    con: Conn,
    launch_id: str | None,
    kind: str,
    payload: dict[str, Any],
    dedupe_key: str | None = None,
) -> int | None:
    """Queue a notification in the caller's transaction; the sweeper sends it later.

    Returns the outbox id, or None when `dedupe_key` was queued before (a no-op).
    """
    outbox_id: int | None = await con.fetchval(
        _ENQUEUE + " RETURNING id", launch_id, _topic(kind), payload, dedupe_key
    )
    return outbox_id


async def enqueue_notifications(
    con: Conn, launch_id: str | None, kind: str, letters: Sequence[tuple[dict[str, Any], str]]
) -> None:
    """`enqueue_notification` for many (payload, dedupe key) pairs in one pipelined batch."""
    topic = _topic(kind)
    await con.executemany(_ENQUEUE, [(launch_id, topic, payload, key) for payload, key in letters])


def backoff(attempts: int) -> timedelta:
    """Wait after the `attempts`-th failed try: 30 s, 1 min, 2 min, … at most 1 hour."""
    return timedelta(seconds=min(BACKOFF_BASE_SECONDS * 2 ** (attempts - 1), BACKOFF_CAP_SECONDS))


class Outcome(enum.Enum):
    IDLE = "nothing due"
    SENT = "sent"
    DROPPED = "dropped"
    FAILED = "failed, will retry"
    SERVER_DOWN = "server unreachable, will retry"


_CLAIM = """
SELECT id, launch_id, topic, payload, attempts FROM outbox
WHERE processed_at IS NULL AND topic LIKE 'notify.%' AND next_attempt_at <= $1
ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED
"""

_RECORD = """
WITH d AS (
    INSERT INTO deliveries (outbox_id, message_id, recipient, sent_at)
    VALUES ($1, $2, $3, $4) ON CONFLICT (outbox_id) DO NOTHING
), o AS (
    UPDATE outbox SET attempts = attempts + 1, processed_at = $4 WHERE id = $1
)
INSERT INTO events (launch_id, at, actor, channel, kind, subject, data)
VALUES ($5, $4, 'system', 'system', $6, $7, $8)
"""

_RETRY = (
    "UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3 WHERE id = $1"
)
_DROP = (
    "WITH o AS (UPDATE outbox SET attempts = attempts + 1, last_error = $2, processed_at = $3"
    " WHERE id = $1)"
    " INSERT INTO events (launch_id, at, actor, channel, kind, subject, data)"
    " VALUES ($4, $3, 'system', 'system', 'notification.dropped', $5, $6)"
)


def _subject(payload: dict[str, Any]) -> str | None:
    registration = payload.get("registration") if isinstance(payload, dict) else None
    return None if registration is None else subjects.registration(registration)


async def prepare(
    deps: Deps, con: Conn, row: asyncpg.Record, now: datetime
) -> tuple[EmailMessage, str]:
    """Outbox row `row` (id, launch_id, topic, payload) as the message it makes now, and
    its recipient's address: loaded and rendered as it is sent (and as the outbox shows it).
    """
    kind = row["topic"].removeprefix(TOPIC_PREFIX)
    loader = KINDS.get(kind)
    if loader is None:  # a newer process may know it; retrying gives it the chance
        raise LookupError(f"this version has no notification kind {kind!r}")
    if row["launch_id"] is None:
        raise Undeliverable("a notification needs a launch")
    stale_after_ms = row["payload"].get("stale_after_ms")
    if stale_after_ms is not None and now.timestamp() * 1000 >= stale_after_ms:
        raise Undeliverable("too late to be of use")  # e.g. a hold that has expired
    letter = await loader(con, row["launch_id"], row["payload"])
    public_url = deps.settings.base_url
    domain = mail_domain(deps.settings)
    cids = {name: f"{name}.{row['id']}@{domain}" for name in letter.images}
    context = {
        **letter.context,
        "public_url": public_url,
        "launch_url": f"{public_url}/launches/{row['launch_id']}",
        "cid": cids,
    }
    registration = row["payload"].get("registration")
    if registration is not None:  # the shopper's own link: status, cancel, calendar
        token = links.manage_token(deps, row["launch_id"], int(registration))
        context["manage_token"] = token
        context["manage_url"] = links.manage_url(deps, row["launch_id"], token)
    msg = compose(
        deps.settings,
        outbox_id=row["id"],
        to=letter.to,
        rendered=render(kind, context),
        images={cids[name]: image for name, image in letter.images.items()},
        at=now,
    )
    return msg, letter.to.addr_spec


async def _retry(con: Conn, row: asyncpg.Record, error: str, now: datetime) -> None:
    attempts = row["attempts"] + 1
    if attempts >= MAX_ATTEMPTS:
        await _drop(con, row, f"gave up after {attempts} attempts: {error}", now)
        return
    log.warning("notification %s failed (attempt %d): %s", row["id"], attempts, error)
    await con.execute(_RETRY, row["id"], error[:2000], now + backoff(attempts))


async def _drop(con: Conn, row: asyncpg.Record, reason: str, now: datetime) -> None:
    log.warning("notification %s dropped: %s", row["id"], reason)
    data = {"outbox": row["id"], "topic": row["topic"], "reason": reason[:2000]}
    await con.execute(
        _DROP, row["id"], reason[:2000], now, row["launch_id"], _subject(row["payload"]), data
    )


async def _send_one(deps: Deps, con: Conn, mailer: Mailer) -> Outcome:
    now = datetime.fromtimestamp(deps.clock.now_ms() / 1000, tz=UTC)
    async with con.transaction():
        row = await con.fetchrow(_CLAIM, now)
        if row is None:
            return Outcome.IDLE
        try:
            async with con.transaction():  # a savepoint: a failed query keeps the claim
                msg, recipient = await prepare(deps, con, row, now)
            await mailer.send(msg)
        except Undeliverable as exc:
            await _drop(con, row, str(exc), now)
            return Outcome.DROPPED
        except aiosmtplib.SMTPRecipientsRefused as exc:
            if all(r.code >= 500 for r in exc.recipients):
                await _drop(con, row, f"recipient refused: {exc}", now)
                return Outcome.DROPPED
            await _retry(con, row, f"recipient refused for now: {exc}", now)
            return Outcome.FAILED
        except CONNECTION_ERRORS as exc:
            await _retry(con, row, f"{type(exc).__name__}: {exc}", now)
            return Outcome.SERVER_DOWN
        except Exception as exc:  # a template, payload or SMTP reply problem: back off
            await _retry(con, row, f"{type(exc).__name__}: {exc}", now)
            return Outcome.FAILED
        # Sent. If this process dies before the commit below, the row is still pending
        # and will be sent again, with the same Message-ID (at least once, see __init__).
        mid = str(msg["Message-ID"])
        await con.execute(
            _RECORD,
            row["id"],
            mid,
            recipient,
            now,
            row["launch_id"],
            "notification.sent",
            _subject(row["payload"]),
            {"outbox": row["id"], "topic": row["topic"], "message_id": mid},
        )
        return Outcome.SENT


async def send_pending(deps: Deps, *, limit: int = 100, budget_seconds: float = 10.0) -> int:
    """Send due notifications, one transaction each; returns how many were sent.

    Stops early when nothing is due, when the SMTP server is unreachable (the row that
    found out backs off; the rest wait for the next sweep), or when `budget_seconds`
    have passed, so a slow server cannot stall the sweeper's other work for long.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget_seconds
    sent = 0
    async with deps.pool.acquire() as con, Mailer(deps.settings) as mailer:
        for _ in range(limit):
            outcome = await _send_one(deps, con, mailer)
            if outcome is Outcome.SENT:
                sent += 1
            if outcome in (Outcome.IDLE, Outcome.SERVER_DOWN) or loop.time() > deadline:
                break
    return sent
