"""The stock scripts of a launch (holds, confirms, the outbox, rebuild and mend), each
as one typed function over `Scripts.run`, and the direct reads of its stock keys.

A script's refusal comes back as its word (`'sold-out'`, `'not-loaded'`, ...): what
it means to a caller is the caller's business (`service.stock.holds.SCRIPT_ERRORS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Literal

import msgspec

from service.infra.keys import LaunchKeys
from service.infra.redis import Scripts
from service.store.records import (
    HoldRecord,
    hold_record,
    reading,
)

NOT_LOADED: Final = "not-loaded"
"""Every script's answer while Redis has not loaded the launch (`load`)."""
OK: Final = "ok"


class Held(msgspec.Struct, frozen=True, array_like=True):
    """`reserve`'s answer for a unit it held."""

    unit_no: int
    slot: int
    expires_ms: int


class Begun(msgspec.Struct, frozen=True, array_like=True):
    """A hold that `confirm_begin` marked confirming: what its reservation claims."""

    store_id: str
    sku_id: str
    unit_no: int
    slot: int


class Overdue(msgspec.Struct, frozen=True, array_like=True):
    """`confirm_overdue`'s answer for one hold."""

    hold_id: str
    registration_id: int
    store_id: str
    sku_id: str
    unit_no: int
    slot: int
    """-1: a move's hold, which has no slot of its own."""


AbortWhy = Literal["retry", "unit-taken", "no-such-unit", "slot-taken"]


async def reserve(
    scripts: Scripts,
    keys: LaunchKeys,
    *,
    now_ms: int,
    hold_id: str,
    registration_id: int,
    store_id: str,
    sku_id: str,
    rank: int | None,
) -> Held | str:
    """Hold one unit (lua/reserve.lua): the unit held, or the script's refusal word.

    The reply is one string, 'ok <unit> <slot> <expires_ms>' (see the script); its words
    decode into `Held` as a table reply would."""
    reply: str = await scripts.run(
        "reserve",
        keys,
        now_ms,
        hold_id,
        registration_id,
        store_id,
        sku_id,
        "" if rank is None else rank,
    )
    word, _, rest = reply.partition(" ")
    if word == OK:
        return msgspec.convert(rest.split(" "), Held, strict=False)
    return reply


async def release(
    scripts: Scripts, keys: LaunchKeys, *, now_ms: int, hold_id: str, registration_id: int
) -> str:
    """Give a held unit back (lua/release.lua): 'ok' or the refusal word."""
    reply = await scripts.run("release", keys, now_ms, hold_id, registration_id)
    return str(reply[0])


def _begun(reply: list[Any]) -> Begun | str:
    if reply[0] == OK:
        return msgspec.convert(reply[1:], Begun, strict=False)
    return str(reply[0])


async def confirm_begin(
    scripts: Scripts,
    keys: LaunchKeys,
    *,
    now_ms: int,
    deadline_ms: int,
    holds: Sequence[tuple[str, int]],
) -> list[Begun | str] | str:
    """Mark holds (hold id, registration id) confirming until `deadline_ms`: per hold
    what its reservation claims or the refusal word; `NOT_LOADED` for the launch."""
    reply = await scripts.run(
        "confirm_begin", keys, now_ms, deadline_ms, *[v for hold in holds for v in hold]
    )
    return _begun_all(reply)


def _begun_all(reply: list[Any]) -> list[Begun | str] | str:
    if reply and reply[0] == NOT_LOADED:
        return NOT_LOADED
    return [_begun(one) for one in reply]


async def confirm_begin_each(
    scripts: Scripts,
    calls: Sequence[tuple[LaunchKeys, Sequence[tuple[str, int]]]],
    *,
    now_ms: int,
    deadline_ms: int,
) -> list[list[Begun | str] | str | Exception]:
    """`confirm_begin` on several launches in one round trip; a failed call's answer is
    its exception."""
    replies = await scripts.run_each(
        "confirm_begin",
        [(keys, (now_ms, deadline_ms, *[v for h in holds for v in h])) for keys, holds in calls],
        raise_on_error=False,
    )
    return [r if isinstance(r, Exception) else _begun_all(r) for r in replies]


async def confirm_end(
    scripts: Scripts, keys: LaunchKeys, *, now_ms: int, hold_ids: Sequence[str]
) -> list[bool]:
    """Count the holds' units confirmed (lua/confirm_end.lua): per hold True, or False
    when it was gone (settled already)."""
    reply = await scripts.run("confirm_end", keys, now_ms, *hold_ids)
    return [word == OK for word, *_ in reply]


async def confirm_end_each(
    scripts: Scripts, calls: Sequence[tuple[LaunchKeys, Sequence[str]]], *, now_ms: int
) -> list[list[bool] | Exception]:
    """`confirm_end` on several launches in one round trip; a failed call's answer is
    its exception."""
    replies = await scripts.run_each(
        "confirm_end", [(keys, [now_ms, *ids]) for keys, ids in calls], raise_on_error=False
    )
    return [r if isinstance(r, Exception) else [word == OK for word, *_ in r] for r in replies]


async def confirm_abort(
    scripts: Scripts, keys: LaunchKeys, *, now_ms: int, hold_id: str, why: AbortWhy
) -> str:
    """Settle a confirming hold whose reservation did not commit (lua/confirm_abort.lua):
    its outcome ('held', 'expired', 'released', 'dropped') or 'gone'."""
    reply = await scripts.run("confirm_abort", keys, now_ms, hold_id, why)
    return str(reply[1]) if reply[0] == OK else str(reply[0])


async def confirm_overdue(
    scripts: Scripts, keys: LaunchKeys, *, now_ms: int, most: int
) -> list[Overdue]:
    """Holds confirming past their deadline, oldest first (lua/confirm_overdue.lua)."""
    reply = await scripts.run("confirm_overdue", keys, now_ms, most)
    return msgspec.convert(reply, list[Overdue], strict=False)


async def expire(scripts: Scripts, keys: LaunchKeys, *, now_ms: int, most: int = -1) -> int:
    """Release up to `most` (-1: all) holds past their time; how many it released."""
    released: int = await scripts.run("expire", keys, now_ms, most)
    return released


async def move_begin(
    scripts: Scripts,
    keys: LaunchKeys,
    *,
    now_ms: int,
    hold_id: str,
    registration_id: int,
    store_id: str,
    sku_id: str,
    deadline_ms: int,
) -> int | str:
    """Take a free unit for a reservation moving to `store_id`, under `hold_id`, confirming
    at once (lua/move_begin.lua): its unit number, or the refusal word."""
    reply = await scripts.run(
        "move_begin", keys, now_ms, hold_id, registration_id, store_id, sku_id, deadline_ms
    )
    return int(reply[1]) if reply[0] == OK else str(reply[0])


class LiveHold(msgspec.Struct, frozen=True, array_like=True):
    """One of a registration's live holds, as `holds_of` answers."""

    hold_id: str
    store_id: str
    sku_id: str
    expires_ms: int
    state: str


async def holds_of(
    scripts: Scripts, keys: LaunchKeys, *, now_ms: int, registration_id: int, live: int
) -> list[LiveHold]:
    """The registration's live holds (lua/holds_of.lua); `live`: its live reservations."""
    flat = await scripts.run("holds_of", keys, now_ms, registration_id, live)
    return msgspec.convert(
        [flat[i : i + 5] for i in range(0, len(flat), 5)], list[LiveHold], strict=False
    )


async def holds_expiring(
    scripts: Scripts, keys: LaunchKeys, *, after_ms: int, upto_ms: int
) -> list[tuple[str, HoldRecord]]:
    """(hold id, record) of the holds whose expiry falls in (after_ms, upto_ms], in
    expiry order; a hold gone meanwhile is left out."""
    redis = scripts.client
    with reading():
        ids = [str(i) for i in await redis.zrangebyscore(keys.expiry, f"({after_ms}", upto_ms)]
        raws = await redis.hmget(keys.holds, ids) if ids else []
    return [(i, hold_record(raw)) for i, raw in zip(ids, raws, strict=True) if raw]
