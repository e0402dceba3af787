"""Notifications nobody's request triggers: enqueued by the background sweeper.

- check-in opens: every verified registration, once the launch's waiting room opens;
- your turn: admission is a counter advanced lazily in Lua, so this is the one place
  that notices it advance and enqueues for the newly admitted ranks;
- hold expiring: holds whose expiry comes within the warning lead;
- pickup reminder: every confirmed reservation, the day before the pickup window
  opens and again when it opens.

Each walk remembers how far it got in `notify_progress`, whose row is locked while a
step is taken, and each message carries a dedupe key, so several processes running
this at once enqueue every message once. Nothing here sends: the sender does.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from service import events, subjects
from service.deps import Deps
from service.infra.db import Conn
from service.notify.sender import TOPIC_PREFIX, enqueue_notification
from service.store import queue as qstore
from service.store import stock as store
from service.store import supply

log = logging.getLogger(__name__)

CHECKIN_BATCH = 5000
ADMITTED_BATCH = 1000
HOLD_WARNING_MS = 60_000
"""Warn this long before a hold expires (at most half the hold time)."""
PICKUP_REMINDER_LEAD = timedelta(days=1)
CHECKIN_STATES = ("checkin_open", "selling")
QUEUE_STATES = ("selling", "sold_out")
PICKUP_STATES = ("selling", "sold_out", "closed", "pickup")

_ENQUEUE = (
    "INSERT INTO outbox (launch_id, topic, payload, dedupe_key) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (dedupe_key) DO NOTHING"
)


async def _progress(con: Conn, launch_id: str, kind: str) -> tuple[int, bool]:
    """How far the walk `kind` got, with its row locked until the transaction ends."""
    await con.execute(
        "INSERT INTO notify_progress (launch_id, kind) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        launch_id,
        kind,
    )
    row = await con.fetchrow(
        "SELECT reached, done FROM notify_progress WHERE launch_id = $1 AND kind = $2 FOR UPDATE",
        launch_id,
        kind,
    )
    assert row is not None
    return int(row["reached"]), bool(row["done"])


async def _advance(con: Conn, launch_id: str, kind: str, reached: int, done: bool) -> None:
    await con.execute(
        "UPDATE notify_progress SET reached = $3, done = $4, updated_at = now()"
        " WHERE launch_id = $1 AND kind = $2",
        launch_id,
        kind,
        reached,
        done,
    )


async def _enqueue_many(
    con: Conn, launch_id: str, kind: str, messages: list[tuple[str, dict[str, Any]]]
) -> None:
    """Queue (dedupe key, payload) pairs of one kind; keys queued before are skipped."""
    if messages:
        await con.executemany(
            _ENQUEUE, [(launch_id, TOPIC_PREFIX + kind, p, key) for key, p in messages]
        )


async def announce_checkin(
    deps: Deps, launch_id: str, batch: int = CHECKIN_BATCH, *, start: bool = True
) -> int:
    """Tell the next `batch` verified registrations that check-in is open; returns how many.

    `start=False` only finishes a walk begun earlier (the sale started meanwhile).
    """
    async with deps.pool.acquire() as con, con.transaction():
        if not start and not await con.fetchval(
            "SELECT 1 FROM notify_progress WHERE launch_id = $1 AND kind = 'checkin_open'",
            launch_id,
        ):
            return 0
        reached, done = await _progress(con, launch_id, "checkin_open")
        if done:
            return 0
        ids = [
            r["id"]
            for r in await con.fetch(
                "SELECT id FROM registrations WHERE launch_id = $1 AND id > $2"
                " AND verified_at IS NOT NULL ORDER BY id LIMIT $3",
                launch_id,
                reached,
                batch,
            )
        ]
        await _enqueue_many(
            con,
            launch_id,
            "checkin_open",
            [(f"checkin_open:{launch_id}:{r}", {"registration": r}) for r in ids],
        )
        await _advance(
            con, launch_id, "checkin_open", ids[-1] if ids else reached, len(ids) < batch
        )
    return len(ids)


async def _registrations_at(deps: Deps, con: Conn, launch_id: str, ranks: range) -> list[int]:
    """The registrations holding `ranks`: drawn ones from the draw, the rest from Redis."""
    entrants = await con.fetchval(
        "SELECT coalesce(entrants, 0) FROM draws WHERE launch_id = $1", launch_id
    )
    entrants = entrants or 0
    out: list[int] = []
    if ranks.start < entrants:
        drawn = await con.fetchval(
            "SELECT drawn[$2:$3] FROM draws WHERE launch_id = $1",
            launch_id,
            ranks.start + 1,
            min(ranks.stop, entrants),
        )
        out += list(drawn or [])
    later = [r for r in ranks if r >= entrants]
    if later:
        regs = await qstore.holders(deps.scripts, deps.keys(launch_id), later)
        missing = [rank for rank, reg in zip(later, regs, strict=True) if reg is None]
        if missing:  # Redis lost them (a restore keeps only the drawn places)
            log.warning("no registration known for ranks %s of %s", missing[:10], launch_id)
        out += [reg for reg in regs if reg is not None]
    return out


async def notify_admitted(deps: Deps, launch_id: str, batch: int = ADMITTED_BATCH) -> int:
    """Enqueue "your turn" for ranks admitted since the last call; returns how many."""
    keys = deps.keys(launch_id)
    seen = await qstore.admission(deps.scripts, keys)
    if seen.phase != "drawn" or seen.admitted is None:
        return 0
    admitted = seen.admitted
    until_ms = deps.clock.now_ms() + (seen.window_ms or 120_000)
    async with deps.pool.acquire() as con, con.transaction():
        reached, _ = await _progress(con, launch_id, "your_turn")
        if admitted <= reached:
            return 0
        ranks = range(reached, min(admitted, reached + batch))
        regs = await _registrations_at(deps, con, launch_id, ranks)
        payload = {"until_ms": until_ms, "stale_after_ms": until_ms}
        await _enqueue_many(
            con,
            launch_id,
            "your_turn",
            [(f"your_turn:{launch_id}:{r}", {"registration": r, **payload}) for r in regs],
        )
        # Admission lives in Redis; this walk is where it is noticed, so it is recorded here.
        await events.record_many(
            con,
            launch_id=launch_id,
            channel="system",
            kind="queue.admitted",
            rows=[
                (
                    "system",
                    subjects.registration(r),
                    {"until_ms": until_ms},
                    f"{launch_id}:admitted:{r}",
                )
                for r in regs
            ],
        )
        await _advance(con, launch_id, "your_turn", ranks.stop, False)
    return len(regs)


async def warn_expiring_holds(deps: Deps, launch_id: str) -> int:
    """Enqueue "hold expiring" for holds whose expiry enters the warning lead."""
    keys = deps.keys(launch_id)
    hold_ms = await supply.hold_ms(deps.scripts, keys)
    if hold_ms is None:
        return 0
    now = deps.clock.now_ms()
    upto = now + min(HOLD_WARNING_MS, hold_ms // 2)
    async with deps.pool.acquire() as con, con.transaction():
        since, _ = await _progress(con, launch_id, "hold_expiring")
        if upto <= since:
            return 0
        # Each expiry time is looked at once: (last upper bound, now + lead].
        found = await store.holds_expiring(
            deps.scripts, keys, after_ms=max(since, now), upto_ms=upto
        )
        messages = []
        for hold_id, h in found:
            if h.state != "held":
                continue
            payload = {
                "registration": h.registration_id,
                "hold": hold_id,
                "store": h.store_id,
                "sku": h.sku_id,
                "expires_ms": h.expires_ms,
                "stale_after_ms": h.expires_ms,
            }
            messages.append((f"hold_expiring:{launch_id}:{hold_id}", payload))
        await _enqueue_many(con, launch_id, "hold_expiring", messages)
        await _advance(con, launch_id, "hold_expiring", upto, False)
    return len(messages)


_REMIND = """
INSERT INTO outbox (launch_id, topic, payload, dedupe_key)
SELECT $1, 'notify.pickup_reminder',
       jsonb_build_object('registration', registration_id, 'reservation', id, 'stage', $2::text),
       key
FROM (SELECT id, registration_id, 'pickup_reminder:' || $2 || ':' || $1 || ':' || id AS key
      FROM reservations WHERE launch_id = $1 AND status = 'confirmed') r
WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.dedupe_key = r.key)
ON CONFLICT (dedupe_key) DO NOTHING
"""


def pickup_stage(now: datetime, starts: datetime | None, ends: datetime | None) -> str | None:
    """Which pickup reminder is due now: `day_before`, `open`, or none."""
    if starts is None or now < starts - PICKUP_REMINDER_LEAD:
        return None
    if now < starts:
        return "day_before"
    if now < min(ends or starts + PICKUP_REMINDER_LEAD, starts + PICKUP_REMINDER_LEAD):
        return "open"
    return None


async def remind_pickups(deps: Deps, launch_id: str, stage: str) -> int:
    """Enqueue the `stage` reminder for every confirmed reservation not yet reminded."""
    result = await deps.pool.execute(_REMIND, launch_id, stage)
    return int(result.split()[-1])


async def enqueue_moved_up(con: Conn, launch_id: str, registration_id: int) -> int | None:
    """Lottery: tell a waiting-list registration that a place came free for it."""
    return await enqueue_notification(
        con,
        launch_id,
        "moved_up",
        {"registration": registration_id},
        dedupe_key=f"moved_up:{launch_id}:{registration_id}",
    )


async def run_schedules(deps: Deps) -> int:
    """One pass over every launch that may have something to announce; returns how many
    messages it enqueued. The sweeper calls this every sweep."""
    now = datetime.fromtimestamp(deps.clock.now_ms() / 1000, tz=UTC)
    rows = await deps.pool.fetch(
        "SELECT id, state, pickup_starts_at, pickup_ends_at FROM launches WHERE state = ANY($1)",
        sorted({*CHECKIN_STATES, *QUEUE_STATES, *PICKUP_STATES}),
    )
    queued = 0
    for row in rows:
        launch_id, state = row["id"], row["state"]
        if state in CHECKIN_STATES:
            queued += await announce_checkin(deps, launch_id, start=state == "checkin_open")
        if state in QUEUE_STATES:
            queued += await notify_admitted(deps, launch_id)
            queued += await warn_expiring_holds(deps, launch_id)
        stage = pickup_stage(now, row["pickup_starts_at"], row["pickup_ends_at"])
        if state in PICKUP_STATES and stage is not None:
            queued += await remind_pickups(deps, launch_id, stage)
    return queued
