"""Checking in to the waiting room: one place per registration, one Redis round trip."""

from __future__ import annotations

import msgspec

from service import errors
from service.deps import Deps
from service.queue import tickets


class CheckedIn(msgspec.Struct, frozen=True):
    ticket: str
    rank: int | None
    """None while in the pre-queue (the draw gives the rank)."""


async def check_in(deps: Deps, launch_id: str, registration_id: int) -> CheckedIn:
    """The registration's ticket: the same place however often it checks in."""
    reply = await deps.scripts.run(
        "checkin", deps.keys(launch_id), deps.clock.now_ms(), registration_id
    )
    if reply[0] == "closed":
        raise errors.CheckinClosed()
    if reply[0] == "not-invited":
        raise errors.NotInvited(
            "Only registrations drawn in the lottery can check in. If you are on the"
            " waiting list, we write to you the moment you move up."
        )
    rank = int(reply[1])
    return CheckedIn(
        ticket=tickets.issue(deps, launch_id, registration_id, rank),
        rank=None if rank == tickets.PREQUEUE else rank,
    )


async def current_rank(deps: Deps, launch_id: str, registration_id: int) -> int | None:
    """The rank Redis holds for a registration (None if it never checked in)."""
    rank = await deps.redis.hget(deps.keys(launch_id).qpos, str(registration_id))
    return None if rank is None else int(rank)
