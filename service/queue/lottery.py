"""The lottery mode: invite K registrations by the verifiable draw; the rest wait in
the same order and move up when invited ones lapse or cancel.

The draw (see `draw.py`) orders the whole roster, the registrations verified when
registration closed, by `HMAC-SHA256(seed, public id)`, and reveals the seed, so
anyone can check the order with `fairdrop verify-draw`. The first `lottery_size`
are invited; a registration's place in the queue is its index in that order, so
moving the waiting list up is extending the invited prefix by one, and the queue
behind it needs no other bookkeeping. Only invited registrations can check in.

Postgres holds how far the prefix reaches (`draws.invited + draws.moved_up`) and each
registration's `draw_status`; Redis gets the places through `invite.lua`, which may
run again at any time (it is idempotent), so a crash between the two only delays it.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from service import errors, events, subjects
from service.deps import Deps
from service.infra.db import Conn, allow_long
from service.notify.schedule import enqueue_moved_up
from service.notify.sender import enqueue_notifications
from service.queue import draw
from service.store import queue as qstore

_PLACE_CHUNK = 10_000  # registrations per invite.lua call

Result = Literal["invited", "waitlisted", "not-entered", "not-drawn-yet"]


class LotteryResult(msgspec.Struct, frozen=True, kw_only=True):
    """One registration's outcome, in the words the shopper sees."""

    result: Result
    rank: int | None
    """Place in the drawn order (0 = first); the queue rank once invited."""
    waitlist_position: int | None
    """1 = next to move up; None unless waitlisted."""
    invited: int
    """How many are invited so far (the lottery size plus those moved up)."""
    message: str


MESSAGES: dict[Result, str] = {
    "invited": "You were drawn: check in when check-in opens to take your place in the queue.",
    "waitlisted": "You were not drawn this time. You are on the waiting list, and we invite"
    " the next person on it whenever an invited shopper lets their turn lapse or cancels.",
    "not-entered": "This registration was not verified when registration closed, so it was"
    " not in the draw.",
    "not-drawn-yet": "The lottery has not been drawn yet.",
}


async def draw_lottery(deps: Deps, launch_id: str, *, actor: str = "system") -> int:
    """Order the roster, invite the first `lottery_size`, reveal the seed; once per launch.

    Returns how many are invited. Calling it again only re-places the invited in Redis.
    """
    size = await deps.pool.fetchval("SELECT lottery_size FROM launches WHERE id = $1", launch_id)
    if size is None:
        raise errors.Conflict("This launch has no lottery size.")
    if await deps.pool.fetchval("SELECT 1 FROM draws WHERE launch_id = $1", launch_id) is None:
        await draw.commit(deps, launch_id, actor=actor)  # registration never closed
    async with deps.pool.acquire() as con, con.transaction():
        await allow_long(con, deps.settings)  # the whole roster, ordered
        row = await con.fetchrow(
            "SELECT seed, roster, revealed_at FROM draws WHERE launch_id = $1 FOR UPDATE",
            launch_id,
        )
        assert row is not None
        if row["revealed_at"] is None:
            await _draw(con, launch_id, bytes(row["seed"]), list(row["roster"]), size, actor)
    return await place(deps, launch_id)


async def _draw(
    con: Conn, launch_id: str, seed: bytes, roster: list[str], size: int, actor: str
) -> None:
    rows = await con.fetch(
        "SELECT id, public_id FROM registrations WHERE launch_id = $1 AND public_id = ANY($2)",
        launch_id,
        roster,
    )
    ids = {r["public_id"]: r["id"] for r in rows}
    ordered = [ids[p] for p in draw.order(seed, list(ids))]
    invited = min(size, len(ordered))
    await con.execute(
        "UPDATE draws SET revealed_at = now(), entrants = $2, drawn = $3, invited = $4"
        " WHERE launch_id = $1",
        launch_id,
        len(ordered),
        ordered,
        invited,
    )
    await con.execute(
        "UPDATE registrations r SET draw_status = CASE WHEN o.n <= $3 THEN 'invited'"
        " ELSE 'waitlisted' END, invited_at = CASE WHEN o.n <= $3 THEN now() END"
        " FROM unnest($2::bigint[]) WITH ORDINALITY AS o(id, n)"
        " WHERE r.launch_id = $1 AND r.id = o.id",
        launch_id,
        ordered,
        invited,
    )
    for kind, group, first in (
        ("lottery_invited", ordered[:invited], 0),
        ("not_drawn", ordered[invited:], invited),
    ):
        await enqueue_notifications(
            con,
            launch_id,
            kind,
            [
                (
                    {"registration": r, "waitlist_position": first + n - invited + 1 or None},
                    f"{kind}:{launch_id}:{r}",
                )
                for n, r in enumerate(group)
            ],
        )
    await events.record(
        con,
        launch_id=launch_id,
        actor=actor,
        channel="system",
        kind="lottery.drawn",
        subject=subjects.launch(launch_id),
        data={"entrants": len(ordered), "invited": invited, "seed": seed.hex()},
    )


async def place(deps: Deps, launch_id: str, *, open_queue: bool = True) -> int:
    """Give every invited registration its place in Redis (idempotent). Returns how many.

    With `open_queue` the queue's length follows (and it opens, if it was not open);
    without, the caller sets both (a restore)."""
    row = await deps.pool.fetchrow(
        "SELECT drawn[1:invited + moved_up] AS placed FROM draws"
        " WHERE launch_id = $1 AND invited IS NOT NULL",
        launch_id,
    )
    if row is None:
        return 0
    placed: list[int] = list(row["placed"] or [])
    keys = deps.keys(launch_id)
    for start in range(0, max(len(placed), 1), _PLACE_CHUNK):  # once even if none: the gate
        chunk = placed[start : start + _PLACE_CHUNK]
        await qstore.invite(
            deps.scripts, keys, places=[(reg, start + i) for i, reg in enumerate(chunk)]
        )
    if open_queue:  # the length last: a place is only ever admitted once it is written
        await qstore.invite(deps.scripts, keys, qlen=len(placed))
    return len(placed)


async def move_up(
    deps: Deps, launch_id: str, target: int, *, actor: str = "system", reason: str
) -> list[int]:
    """Make sure at least `target` have moved up from the waiting list; returns who moved
    now (none when others already did: safe to call from every worker at once)."""
    async with deps.pool.acquire() as con, con.transaction():
        row = await con.fetchrow(
            "SELECT invited, moved_up, cardinality(drawn) AS entrants FROM draws"
            " WHERE launch_id = $1 AND invited IS NOT NULL FOR UPDATE",
            launch_id,
        )
        if row is None:
            return []
        room = row["entrants"] - row["invited"]
        new = min(target, room)
        if new <= row["moved_up"]:
            return []
        start, end = row["invited"] + row["moved_up"], row["invited"] + new
        moved: list[int] = list(
            await con.fetchval(
                "SELECT drawn[$2:$3] FROM draws WHERE launch_id = $1", launch_id, start + 1, end
            )
        )
        await con.execute("UPDATE draws SET moved_up = $2 WHERE launch_id = $1", launch_id, new)
        await con.execute(
            "UPDATE registrations SET draw_status = 'invited', invited_at = now()"
            " WHERE launch_id = $1 AND id = ANY($2)",
            launch_id,
            moved,
        )
        for n, registration_id in enumerate(moved):
            await enqueue_moved_up(con, launch_id, registration_id)
            await events.record(
                con,
                launch_id=launch_id,
                actor=actor,
                channel="system",
                kind="lottery.moved_up",
                subject=subjects.registration(registration_id),
                data={"rank": start + n, "reason": reason},
            )
    await place(deps, launch_id)
    return moved


async def advance(deps: Deps, launch_id: str, lapsed: int) -> list[int]:
    """The waiting list moves by one for every invited shopper whose turn lapsed (Redis's
    `lapsed` counter) and every cancelled reservation."""
    cancelled = await deps.pool.fetchval(
        "SELECT count(*) FROM reservations WHERE launch_id = $1 AND status = 'cancelled'",
        launch_id,
    )
    return await move_up(
        deps, launch_id, lapsed + cancelled, reason=f"{lapsed} lapsed, {cancelled} cancelled"
    )


async def result(deps: Deps, launch_id: str, registration_id: int) -> LotteryResult:
    """Where a registration stands in the lottery."""
    row = await deps.pool.fetchrow(
        "SELECT d.invited, d.moved_up, array_position(d.drawn, r.id) AS n, r.draw_status"
        " FROM registrations r LEFT JOIN draws d"
        " ON d.launch_id = r.launch_id AND d.invited IS NOT NULL"
        " WHERE r.launch_id = $1 AND r.id = $2",
        launch_id,
        registration_id,
    )
    if row is None:
        raise errors.NotFound("No such registration.")
    if row["invited"] is None:
        return LotteryResult(
            result="not-drawn-yet",
            rank=None,
            waitlist_position=None,
            invited=0,
            message=MESSAGES["not-drawn-yet"],
        )
    invited = row["invited"] + row["moved_up"]
    n = row["n"]
    outcome: Result
    if n is None:
        outcome, position = "not-entered", None
    elif n <= invited:
        outcome, position = "invited", None
    else:
        outcome, position = "waitlisted", n - invited
    return LotteryResult(
        result=outcome,
        rank=None if n is None else n - 1,
        waitlist_position=position,
        invited=invited,
        message=MESSAGES[outcome],
    )
