"""Leaving the queue: a shopper gives up their place, or a turn they will not use.

Admission passes a rank given up by (`lua/leave.lua`, `lua/admit.lua`): it takes no
window, no room under the active cap and no unit, so the people behind move up at
once instead of after a window nobody uses. Leaving is for good: the place is not
given back, and checking in again says so.
"""

from __future__ import annotations

from service import errors, events, subjects
from service.deps import Deps
from service.store import queue as qstore

LEFT = (
    "Your place went to the people behind you, and this registration cannot queue again"
    " for this sale."
)
_REFUSED = {
    "holding": "A unit is held for you: confirm it, or let it go (which ends your turn).",
    "over": "Your turn is over already: there is nothing to hand back.",
}


async def leave(deps: Deps, launch_id: str, registration_id: int, *, channel: str) -> int | None:
    """Give up the registration's place (or unused turn); the same if done before.
    Returns the rank given up (None from the pre-queue: the draw has not ranked it).
    The audit trail says from where: the pre-queue, waiting in line, or a turn."""
    reply = await qstore.leave(deps.scripts, deps.keys(launch_id), registration_id=registration_id)
    if reply.word in _REFUSED:
        raise errors.Conflict(_REFUSED[reply.word])
    if reply.word == "not-in-queue":
        raise errors.NotFound("This registration has not checked in to the waiting room.")
    rank, how = reply.rank, reply.how
    if how == "left":
        return None if rank < 0 else rank  # left before: nothing new to record
    await events.record(
        deps.pool,
        launch_id=launch_id,
        actor=subjects.registration(registration_id),
        channel=channel,
        kind="queue.left",
        subject=subjects.registration(registration_id),
        data={"rank": None if rank < 0 else rank, "from": how},
    )
    return None if rank < 0 else rank


async def replay(deps: Deps, launch_id: str) -> None:
    """A rebuilt queue: give up again the places of those who left (not counted again)."""
    rows = await deps.pool.fetch(
        "SELECT DISTINCT subject FROM events WHERE launch_id = $1 AND kind = 'queue.left'",
        launch_id,
    )
    keys = deps.keys(launch_id)
    for row in rows:
        registration_id = int(str(row["subject"]).removeprefix("registration:"))
        await qstore.leave(deps.scripts, keys, registration_id=registration_id, replayed=True)
