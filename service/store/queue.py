"""The queue scripts of a launch (check-in, draw, lottery invitations, turns, restore,
rate limits), each as one typed function over `Scripts.run`, and the direct reads and
writes of its queue keys (`qpos`, `qrank`, `qmeta`, `drawset`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final, cast

import msgspec

from service.infra.keys import LaunchKeys
from service.infra.redis import Scripts
from service.store.records import reading

# Fields of a launch's `qmeta` hash (lua/_shared.lua describes them).
PHASE: Final = "phase"
"""'pre' while a shuffled launch collects its pre-queue, 'drawn' once places are given."""
ADMITTED: Final = "admitted"
WINDOW_MS: Final = "window_ms"
RATE: Final = "rate"
CAP: Final = "cap"


class CheckinReply(msgspec.Struct, frozen=True):
    """`checkin`'s answer: `word` 'ok' or 'left' with the rank (-1: the pre-queue),
    'need-ceiling' with the queue length, or a refusal ('closed', 'not-invited')."""

    word: str
    value: int | None = None


async def checkin(
    scripts: Scripts,
    keys: LaunchKeys,
    *,
    now_ms: int,
    registration_id: int,
    ceiling: int | None = None,
) -> CheckinReply:
    """Give the registration its place, the same one on every call (lua/checkin.lua)."""
    extra = () if ceiling is None else (ceiling,)
    reply = await scripts.run("checkin", keys, now_ms, registration_id, *extra)
    return CheckinReply(str(reply[0]), None if len(reply) < 2 else int(reply[1]))


class DrawBegun(msgspec.Struct, frozen=True):
    """`draw_begin`'s answer: begun with `entrants`, or not (`phase`: the queue's now)."""

    begun: bool
    entrants: int = 0
    phase: str = ""


async def draw_begin(scripts: Scripts, keys: LaunchKeys) -> DrawBegun:
    """Freeze the pre-queue into the draw set (lua/draw_begin.lua)."""
    reply = await scripts.run("draw_begin", keys)
    if reply[0] == "ok":
        return DrawBegun(True, entrants=int(reply[1]))
    return DrawBegun(False, phase=str(reply[1]))


async def draw_finish(
    scripts: Scripts, keys: LaunchKeys, *, entrants: int, outside: Sequence[int]
) -> int:
    """Open the drawn queue; `outside` get the ranks right after the entrants. Its length."""
    reply = await scripts.run("draw_finish", keys, entrants, *outside)
    return int(reply[1])


async def drawset(scripts: Scripts, keys: LaunchKeys) -> list[int]:
    """The draw set's registrations, in arrival order."""
    with reading():
        return [int(r) for r in await scripts.client.lrange(keys.drawset, 0, -1)]


async def invite(
    scripts: Scripts, keys: LaunchKeys, *, qlen: int = -1, places: Sequence[tuple[int, int]] = ()
) -> int:
    """Write (registration, rank) places and, unless `qlen` is -1, open the queue that
    long (lua/invite.lua). The queue's length."""
    reply = await scripts.run("invite", keys, qlen, *[v for place in places for v in place])
    return int(reply[1])


async def queue_restore(
    scripts: Scripts,
    keys: LaunchKeys,
    *,
    now_ms: int,
    phase: str,
    qlen: int,
    admitted: int,
    lapsed: int,
    window_ms: int,
    cap: int,
) -> bool:
    """Put a lost queue's counters back (lua/queue_restore.lua); False if it was there."""
    restored = await scripts.run(
        "queue_restore", keys, now_ms, phase, qlen, admitted, lapsed, window_ms, cap
    )
    return bool(restored)


class TurnReply(msgspec.Struct, frozen=True):
    """`turn`'s answer: `word` 'holding', 'left', 'done', 'over', or 'open' with when the
    window closes and the customer's units used of their limit."""

    word: str
    until_ms: int = 0
    used: int = 0
    limit: int = 0


async def turn(
    scripts: Scripts, keys: LaunchKeys, *, now_ms: int, rank: int, registration_id: int
) -> TurnReply:
    """Where the turn of an admitted rank stands (lua/turn.lua; one string reply)."""
    word, *rest = str(await scripts.run("turn", keys, now_ms, rank, registration_id)).split(" ")
    if word == "open":
        until_ms, used, limit = (int(x) for x in rest)
        return TurnReply(word, until_ms, used, limit)
    return TurnReply(word)


async def rate_limit(
    scripts: Scripts,
    keys: LaunchKeys,
    *,
    now_ms: int,
    allowances: Sequence[tuple[str, float, float]],
) -> tuple[int, int]:
    """Take one use of each allowance (member, interval_ms, burst) or none
    (lua/rate_limit.lua): (0, 0), or the ms until the refusing one has room and its
    index from 1."""
    flat = [v for allowance in allowances for v in allowance]
    wait_ms, refused = await scripts.run("rate_limit", keys, now_ms, *flat)
    return int(wait_ms), int(refused)


async def rank_of(scripts: Scripts, keys: LaunchKeys, registration_id: int) -> int | None:
    """The registration's rank (None if it never checked in)."""
    with reading():
        rank = await scripts.client.hget(keys.qpos, str(registration_id))
    return None if rank is None else int(rank)


async def checked_in(scripts: Scripts, keys: LaunchKeys) -> int:
    """How many registrations have a place."""
    with reading():
        return int(await scripts.client.hlen(keys.qpos))


async def holders(scripts: Scripts, keys: LaunchKeys, ranks: Sequence[int]) -> list[int | None]:
    """The registration holding each rank given after the draw (None: not known)."""
    with reading():
        regs = await scripts.client.hmget(keys.qrank, [str(r) for r in ranks])
    return [None if reg is None else int(reg) for reg in regs]


async def place_ranks(
    scripts: Scripts, keys: LaunchKeys, ranked: Sequence[int], *, chunk: int
) -> None:
    """Write each ranked registration's rank (its index) to `qpos`. Two writers, so one
    packs its next chunk while Redis stores the other's."""

    async def write(starts: range) -> None:
        for start in starts:
            part = ranked[start : start + chunk]
            pairs = zip(part, range(start, start + len(part)), strict=True)
            await scripts.client.hset(keys.qpos, items=[v for pair in pairs for v in pair])

    starts = range(0, len(ranked), chunk)
    with reading():
        await asyncio.gather(write(starts[0::2]), write(starts[1::2]))


async def write_places(
    scripts: Scripts, keys: LaunchKeys, places: Sequence[tuple[int, int]]
) -> None:
    """Write (registration, rank) places both ways (`qpos` and `qrank`), one round trip."""
    with reading():
        async with scripts.client.pipeline(transaction=False) as pipe:
            pipe.hset(keys.qpos, items=[v for reg, rank in places for v in (reg, rank)])
            pipe.hset(keys.qrank, items=[v for reg, rank in places for v in (rank, reg)])
            await pipe.execute()


class Admission(msgspec.Struct, frozen=True):
    """What `qmeta` says of admission: the phase, ranks admitted so far, the window."""

    phase: str | None
    admitted: int | None
    window_ms: int | None


async def admission(scripts: Scripts, keys: LaunchKeys) -> Admission:
    with reading():
        phase, admitted, window = await scripts.client.hmget(
            keys.qmeta, [PHASE, ADMITTED, WINDOW_MS]
        )
    return Admission(
        None if phase is None else str(phase),
        int(admitted) if admitted else None,
        int(window) if window else None,
    )


async def publish_admission(
    scripts: Scripts, keys: LaunchKeys, *, rate: float, cap: int, window_ms: int
) -> None:
    """The admission settings the admit script reads live."""
    with reading():
        await scripts.client.hset(keys.qmeta, mapping={RATE: rate, CAP: cap, WINDOW_MS: window_ms})


async def open_queue(scripts: Scripts, keys: LaunchKeys, phase: str) -> None:
    """Set the queue's phase once: a later call changes nothing."""
    with reading():
        await scripts.client.hsetnx(keys.qmeta, PHASE, phase)


async def phase(scripts: Scripts, keys: LaunchKeys) -> str | None:
    with reading():
        found = await scripts.client.hget(keys.qmeta, PHASE)
    return None if found is None else str(found)


class AdmitReply(msgspec.Struct, frozen=True, array_like=True):
    """`admit`'s answer (lua/admit.lua), in its order. Rates are in thousandths."""

    phase: str
    qlen: int
    admitted: int
    sold_out: bool
    active: int
    lapsed: int
    window_ms: int
    restored_ms: int
    """When `queue_restore` last rebuilt this queue; 0: never."""
    set_rate_milli: int
    cap: int
    free: int
    choosing: int
    """Admitted, no hold yet."""
    admitting: bool
    """Drawn and selling."""
    left: int
    """Ranks given up so far."""
    loaded: bool
    """The launch's stock is in Redis."""
    left_prequeue: int = 0
    """Registrations that left the pre-queue, until the draw gives up their ranks."""


async def admit(scripts: Scripts, keys: LaunchKeys, *, now_ms: int) -> AdmitReply:
    """Admit the ranks whose turn has come and report the queue (lua/admit.lua)."""
    reply = await scripts.run("admit", keys, now_ms)
    return msgspec.convert(reply, AdmitReply, strict=False)


class LeaveReply(msgspec.Struct, frozen=True):
    """`leave`'s answer: `word` 'ok' with the rank given up (-1: from the pre-queue) and
    from where (`how`: 'prequeue', 'waiting', 'turn', or 'left' when left before), or a
    refusal ('not-in-queue', 'holding', 'over')."""

    word: str
    rank: int = -1
    how: str = ""


async def leave(
    scripts: Scripts, keys: LaunchKeys, *, registration_id: int, replayed: bool = False
) -> LeaveReply:
    """Give up the registration's place (lua/leave.lua); `replayed` into a rebuilt queue
    (counted before)."""
    reply = await scripts.run("leave", keys, registration_id, int(replayed))
    if reply[0] != "ok":
        return LeaveReply(str(reply[0]))
    return LeaveReply("ok", int(reply[1]), str(reply[2]))


async def left_prequeue(scripts: Scripts, keys: LaunchKeys) -> set[int]:
    """The registrations that left the pre-queue."""
    with reading():
        return {int(m) for m in await scripts.client.smembers(keys.leftpre)}


async def left_since(scripts: Scripts, keys: LaunchKeys, seen: int) -> list[tuple[int, int]]:
    """(rank, order) of the ranks given up after the first `seen`, scored by their order."""
    with reading():
        found = cast(
            "list[tuple[str, float]]",
            await scripts.client.zrangebyscore(keys.left, seen + 1, "+inf", withscores=True),
        )
    return [(int(rank), int(score)) for rank, score in found]
