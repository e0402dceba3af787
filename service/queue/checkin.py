"""Checking in to the waiting room: one place per registration, one Redis round trip."""

from __future__ import annotations

import collections

import asyncpg
import msgspec

from service import errors
from service.deps import Deps
from service.queue import tickets
from service.queue.leave import LEFT
from service.store import queue as qstore

RANK_BLOCK = 32
"""Ranks kept in Postgres ahead of those given, beyond the check-ins waiting for a
ceiling in this worker: about one write per this many check-ins, and after a lost
Redis comes back about this many ranks nobody holds (each is admitted to nobody and
its window lapses)."""
_CEILING_TRIES = 20
_waiting: collections.Counter[str] = collections.Counter()
"""Check-ins of this worker waiting for a ceiling, by launch: a burst raises it for all
of them at once instead of a block per round trip."""


class CheckedIn(msgspec.Struct, frozen=True):
    ticket: str
    rank: int | None
    """None while in the pre-queue (the draw gives the rank)."""


async def check_in(deps: Deps, launch_id: str, registration_id: int) -> CheckedIn:
    """The registration's ticket: the same place however often it checks in."""
    keys = deps.keys(launch_id)
    reply = await qstore.checkin(
        deps.scripts, keys, now_ms=deps.clock.now_ms(), registration_id=registration_id
    )
    for _ in range(_CEILING_TRIES):
        if reply.word != "need-ceiling":
            break
        assert reply.value is not None
        _waiting[launch_id] += 1
        try:
            upto = reply.value + RANK_BLOCK + _waiting[launch_id]
            ceiling = await reserve_ranks(deps, launch_id, upto)
        finally:
            _waiting[launch_id] -= 1
        reply = await qstore.checkin(
            deps.scripts,
            keys,
            now_ms=deps.clock.now_ms(),
            registration_id=registration_id,
            ceiling=ceiling,
        )
    else:
        raise errors.Unavailable("Check-ins are arriving faster than places are kept; try again.")
    if reply.word == "closed":
        raise errors.CheckinClosed()
    if reply.word == "not-invited":
        raise errors.NotInvited(
            "Only registrations drawn in the lottery can check in. If you are on the"
            " waiting list, we write to you the moment you move up."
        )
    if reply.word == "left":
        raise errors.LeftQueue(LEFT)
    assert reply.value is not None
    rank = reply.value
    return CheckedIn(
        ticket=tickets.issue(deps, launch_id, registration_id, rank),
        rank=None if rank == tickets.PREQUEUE else rank,
    )


async def reserve_ranks(deps: Deps, launch_id: str, upto: int) -> int:
    """Keep in Postgres that ranks below `upto` may be given (never lowered), before Redis
    gives them; `restore` starts a lost queue past it. Returns the ceiling kept."""
    try:
        ceiling: int = await deps.pool.fetchval(
            "INSERT INTO queue_state (launch_id, qlen, admitted, rank_ceiling)"
            " VALUES ($1, 0, 0, $2) ON CONFLICT (launch_id) DO UPDATE"
            " SET rank_ceiling = greatest(queue_state.rank_ceiling, EXCLUDED.rank_ceiling)"
            " RETURNING rank_ceiling",
            launch_id,
            upto,
        )
    except (asyncpg.PostgresError, OSError) as exc:
        raise errors.Unavailable("The queue cannot give places right now; try again.") from exc
    return ceiling


async def current_rank(deps: Deps, launch_id: str, registration_id: int) -> int | None:
    """The rank Redis holds for a registration (None if it never checked in)."""
    return await qstore.rank_of(deps.scripts, deps.keys(launch_id), registration_id)
