"""A registration's story in the queue, from where each fact lives, as timeline entries
beside its events: the place the draw gave it (`draws.drawn`), a place given after the
draw or in order of arrival (`queue_places`), its turn (the "your turn" notification,
queued as admission reached it, with the time it had to hold) and a turn that lapsed
(that time passed with no hold placed, by the hold events, and the turn not handed
back). Check-ins and admissions
are events of their own; what they record is not said twice."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from service.deps import Deps


class TimelineEntry(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    kind: str
    """The event's stable kind, for programs."""
    actor: str
    channel: str
    data: dict[str, Any]
    what: str = ""
    """What happened, in plain words, naming the reservation's code."""
    by: str = ""
    """Who did it, in plain words (the customer, customer service (key label), …)."""


_DRAWN = """
SELECT array_position(drawn, $2::bigint) AS place, cardinality(drawn) AS entrants, revealed_at
FROM draws WHERE launch_id = $1 AND drawn IS NOT NULL AND revealed_at IS NOT NULL
"""
_PLACED = "SELECT rank, placed_at FROM queue_places WHERE launch_id = $1 AND registration_id = $2"
_TURN = "SELECT created_at, payload FROM outbox WHERE dedupe_key = $1"  # schedule.py's key


def _entry(at: datetime, kind: str, **data: object) -> TimelineEntry:
    return TimelineEntry(at=at, kind=kind, actor="system", channel="system", data=data)


async def queue_story(
    deps: Deps, launch_id: str, registration_id: int, events: list[TimelineEntry]
) -> list[TimelineEntry]:
    """The queue's entries of the registration's story (`events`: its own, for holds)."""
    out: list[TimelineEntry] = []
    drawn = await deps.pool.fetchrow(_DRAWN, launch_id, registration_id)
    if drawn is not None and drawn["place"] is not None:
        out.append(
            _entry(
                drawn["revealed_at"],
                "queue.drawn",
                place=drawn["place"],
                entrants=drawn["entrants"],
            )
        )
    recorded = {e.kind: e for e in events if e.kind.startswith("queue.")}
    checked_in = recorded.get("queue.checked_in")
    if checked_in is None or checked_in.data.get("rank") is None:
        # A place given after the draw or in order of arrival; the check-in event, when
        # recorded, names it already (a pre-queue check-in's place is the draw's).
        placed = await deps.pool.fetchrow(_PLACED, launch_id, registration_id)
        if placed is not None:
            out.append(_entry(placed["placed_at"], "queue.placed", place=placed["rank"] + 1))
    admitted = recorded.get("queue.admitted")
    if admitted is not None:
        turn_at, until_ms = admitted.at, int(admitted.data.get("until_ms", 0))
    else:  # admitted before admissions were recorded: the "your turn" notification
        turn = await deps.pool.fetchrow(_TURN, f"your_turn:{launch_id}:{registration_id}")
        if turn is None:
            return out
        turn_at, until_ms = turn["created_at"], int(turn["payload"]["until_ms"])
        out.append(_entry(turn_at, "queue.admitted", until_ms=until_ms))
    until = datetime.fromtimestamp(until_ms / 1000, tz=UTC)
    held = any(e.kind == "hold.held" and turn_at <= e.at <= until for e in events)
    now = datetime.fromtimestamp(deps.clock.now_ms() / 1000, tz=UTC)
    handed_back = "queue.left" in recorded
    if not held and not handed_back and until <= now:
        out.append(_entry(until, "queue.lapsed"))
    return out
