"""A launch's hold event log: what the scripts write, drained into the audit trail.

Every script that makes, confirms or ends a hold appends a line to the launch's Redis
log in the same atomic step; the sweeper copies the lines into Postgres `events`
(kind `hold.<kind>`, data `{hold, store, sku, at_ms}`, subject the registration).
That copy is the durable memory of a hold once Redis has forgotten it: `last_event`
tells a shopper confirming a hold that expired long ago that it expired, not that it
never was.
"""

from __future__ import annotations

import msgspec

from service import subjects
from service.deps import Deps
from service.infra import metrics
from service.infra.db import Conn
from service.store import logs


class HoldEvent(msgspec.Struct, frozen=True):
    """One line of a launch's hold event log (written by the scripts' `log`)."""

    kind: str
    hold: str
    reg: str
    store: str
    sku: str
    at_ms: int


def parse_hold_event(line: str) -> HoldEvent:
    kind, hold, reg, store, sku, at = line.split("|")
    return HoldEvent(kind, hold, reg, store, sku, int(at))


async def hold_events(deps: Deps, launch_id: str, count: int = -1) -> list[HoldEvent]:
    """The oldest `count` (-1: all) hold events not yet drained."""
    lines = await logs.hold_log(deps.scripts, deps.keys(launch_id), count)
    return [parse_hold_event(line) for line in lines]


async def drain_events(deps: Deps, launch_id: str, batch: int = 500, most: int = 100_000) -> int:
    """Copy hold events from the launch's Redis log into the audit trail, then trim them
    (`service/infra/drain.py`); a line copied twice is kept once (`source_id`)."""

    async def store(con: Conn, lines: list[str]) -> None:
        events = [parse_hold_event(line) for line in lines]
        rows = [
            (
                launch_id,
                subjects.registration(e.reg),
                "hold." + e.kind,
                subjects.registration(e.reg),
                {"hold": e.hold, "store": e.store, "sku": e.sku, "at_ms": e.at_ms},
                f"{launch_id}:{e.hold}:{e.kind}:{e.at_ms}",
            )
            for e in events
        ]
        await con.executemany(
            "INSERT INTO events (launch_id, actor, channel, kind, subject, data, source_id)"
            " VALUES ($1, $2, 'system', $3, $4, $5, $6) ON CONFLICT (source_id) DO NOTHING",
            rows,
        )
        metrics.count_hold_events(launch_id, (e.kind for e in events))

    return await logs.drain_hold_log(
        deps.scripts, deps.pool, deps.keys(launch_id), store, batch=batch, most=most
    )


# Through the registration's events (indexed by subject): a customer has few.
_LAST = """
SELECT substr(kind, 6) AS kind, (data->>'at_ms')::bigint AS at_ms FROM events
WHERE subject = $1 AND launch_id = $2 AND kind LIKE 'hold.%' AND data->>'hold' = $3
ORDER BY id DESC LIMIT 1
"""


class HoldEnd(msgspec.Struct, frozen=True):
    kind: str
    """The hold's last event: `held`, `confirmed`, `expired`, `released` or `refused`."""
    at_ms: int


async def last_event(
    deps: Deps, launch_id: str, registration_id: int, hold_id: str
) -> HoldEnd | None:
    """The last thing that happened to the registration's hold `hold_id`, by the audit
    trail, or None if it never had that hold. Drains the log first, so an event a script
    wrote a moment ago counts. Only for refusals: it costs Postgres round trips."""
    await drain_events(deps, launch_id)
    row = await deps.pool.fetchrow(
        _LAST, subjects.registration(registration_id), launch_id, hold_id
    )
    return None if row is None else HoldEnd(row["kind"], row["at_ms"])
