"""The stock scripts of a launch (holds, confirms, the outbox, rebuild and mend), each
as one typed function over `Scripts.run`, and the direct reads of its stock keys.

A script's refusal comes back as its word (`'sold-out'`, `'not-loaded'`, ...): what
it means to a caller is the caller's business (`service.stock.holds.SCRIPT_ERRORS`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import msgspec

from service import errors
from service.infra.keys import LaunchKeys
from service.infra.redis import Scripts
from service.store.records import (
    HOLD_MS,
    LIMIT,
    LOADED,
    SELLING,
    SUSPECT,
    HoldRecord,
    hold_record,
    reading,
)

NOT_LOADED: Final = "not-loaded"
"""Every script's answer while Redis has not loaded the launch (`load`)."""
OK: Final = "ok"


class Held(msgspec.Struct, frozen=True):
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

    The reply is one string ('ok <unit> <slot> <expires_ms>'), split here by hand: the
    hot path's decode stays three `int()`s (a `msgspec.convert` costs more than the
    split; see docs/performance.md for the reserve figures)."""
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
    if reply.startswith("ok "):
        _, unit, slot, expires = reply.split(" ")
        return Held(int(unit), int(slot), int(expires))
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


async def add_units(
    scripts: Scripts,
    keys: LaunchKeys,
    *,
    outbox_id: int | str,
    pair: str,
    first: int,
    end: int,
    units: Sequence[int] = (),
) -> str:
    """Units [first, end) and `units` join the free stock, once per outbox id: 'ok',
    'duplicate' or `NOT_LOADED`."""
    reply = await scripts.run("add_units", keys, str(outbox_id), pair, first, end, *units)
    return str(reply[0])


async def return_unit(
    scripts: Scripts,
    keys: LaunchKeys,
    *,
    outbox_id: int,
    store_id: str,
    sku_id: str,
    unit_no: int,
    registration_id: int,
    slot: int,
    hold_id: str,
) -> str:
    """A cancelled reservation's unit and slot come back, once per outbox id."""
    reply = await scripts.run(
        "return_unit",
        keys,
        str(outbox_id),
        store_id,
        sku_id,
        unit_no,
        registration_id,
        slot,
        hold_id,
    )
    return str(reply[0])


async def move_unit(
    scripts: Scripts,
    keys: LaunchKeys,
    *,
    outbox_id: int,
    store_id: str,
    sku_id: str,
    unit_no: int,
    hold_id: str,
    to_store_id: str,
    to_hold_id: str,
) -> str:
    """A moved reservation's old unit comes back, its new one counts confirmed, once."""
    reply = await scripts.run(
        "move_unit",
        keys,
        str(outbox_id),
        store_id,
        sku_id,
        unit_no,
        hold_id,
        to_store_id,
        to_hold_id,
    )
    return str(reply[0])


async def withdraw_sold(
    scripts: Scripts, keys: LaunchKeys, *, mark: str, units: Sequence[tuple[str, int, int, int]]
) -> int:
    """Take these sold units ("store:sku", unit, registration id, slot) out of what Redis
    offers; then clear `mark` (the launch's suspect mark, '' for none) if it is unchanged.
    How many it withdrew."""
    withdrawn: int = await scripts.run(
        "withdraw_sold", keys, mark, *[v for unit in units for v in unit]
    )
    return withdrawn


async def load_begin(scripts: Scripts, keys: LaunchKeys) -> None:
    """Wipe the launch's stock state; every script answers `NOT_LOADED` until `load_finish`."""
    await scripts.run("load", keys, "begin")


async def load_units(scripts: Scripts, keys: LaunchKeys, pair: str, units: Sequence[int]) -> None:
    await scripts.run("load", keys, "units", pair, *units)


async def load_counts(
    scripts: Scripts,
    keys: LaunchKeys,
    *,
    allocated: Mapping[str, int],
    confirmed: Mapping[str, int],
    slots: Mapping[str, int],
    fresh: Mapping[str, tuple[int, int]],
) -> None:
    """Per pair its units and confirmed ones and fresh run [n, t); per registration its
    slot mask."""
    counts = {"alloc": allocated, "confirmed": confirmed, "cust": slots, "fresh": fresh}
    await scripts.run("load", keys, "counts", json.dumps(counts))


async def load_finish(
    scripts: Scripts, keys: LaunchKeys, *, selling: bool, hold_ms: int, limit: int
) -> None:
    """Publish the launch's settings and mark it loaded."""
    await scripts.run("load", keys, "finish", int(selling), hold_ms, limit)


class Withdrawn(msgspec.Struct, frozen=True):
    """Units `withdraw_units` took out of stock: [first, end) off the fresh run's top,
    then `units` from the free set."""

    first: int
    end: int
    units: list[int]


class Short(msgspec.Struct, frozen=True):
    """`withdraw_units` refused: only `free` units are free."""

    free: int


async def withdraw_units(
    scripts: Scripts, keys: LaunchKeys, *, now_ms: int, pair: str, n: int
) -> Withdrawn | Short | str:
    """Take `n` free units of the pair out of stock, all or none (lua/withdraw_units.lua);
    `NOT_LOADED` while Redis has not loaded the launch."""
    reply = await scripts.run("withdraw_units", keys, now_ms, pair, n)
    if reply[0] == OK:
        return Withdrawn(int(reply[1]), int(reply[2]), [int(u) for u in reply[3:]])
    if reply[0] == "short":
        return Short(int(reply[1]))
    return str(reply[0])


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


async def publish_settings(
    scripts: Scripts, keys: LaunchKeys, *, selling: bool, hold_ms: int, limit: int
) -> None:
    """Tell a loaded launch's scripts its settings (`load_finish` sets them on a load)."""
    with reading():
        if await scripts.client.hget(keys.meta, LOADED) == "1":
            await scripts.client.hset(
                keys.meta, mapping={SELLING: int(selling), HOLD_MS: hold_ms, LIMIT: limit}
            )


async def is_loaded(scripts: Scripts, keys: LaunchKeys) -> bool:
    with reading():
        return bool(await scripts.client.hget(keys.meta, LOADED) == "1")


async def suspect_mark(scripts: Scripts, keys: LaunchKeys) -> str | None:
    """The launch's suspect mark (lua/confirm_abort.lua sets it), None if not suspect."""
    with reading():
        mark = await scripts.client.hget(keys.meta, SUSPECT)
    return None if mark is None else str(mark)


async def mark_suspect(scripts: Scripts, keys: LaunchKeys, *, now_ms: int) -> None:
    with reading():
        await scripts.client.hset(keys.meta, SUSPECT, now_ms)


class StockSnapshot(msgspec.Struct, frozen=True):
    """A launch's stock counts per "store:sku" at one moment."""

    allocated: dict[str, int]
    held: dict[str, int]
    confirmed: dict[str, int]
    fresh: dict[str, int]
    """Units of the pair's fresh run, never taken yet."""
    free: dict[str, int]
    """Units in the free set (below the fresh run)."""


_READS = 5


async def stock_snapshot(scripts: Scripts, keys: LaunchKeys) -> StockSnapshot:
    """Every count in one transaction, so a hold or return between two reads cannot
    show a unit twice. Read again if a pair was added meanwhile."""
    redis = scripts.client
    with reading():
        pairs = sorted(str(p) for p in await redis.hkeys(keys.allocated))
        for _ in range(_READS):
            async with redis.pipeline(transaction=True) as pipe:
                pipe.hgetall(keys.allocated)
                pipe.hgetall(keys.held)
                pipe.hgetall(keys.confirmed)
                pipe.hgetall(keys.fresh)
                for p in pairs:
                    pipe.zlexcount(keys.free, f"[{p}:", f"({p};")
                allocated, held, confirmed, fresh, *free = await pipe.execute()
            if sorted(allocated) == pairs:
                break
            pairs = sorted(allocated)
        else:
            raise errors.Unavailable("The stock is being changed; try again.")
    return StockSnapshot(
        allocated={p: int(n) for p, n in allocated.items()},
        held={p: int(n) for p, n in held.items()},
        confirmed={p: int(n) for p, n in confirmed.items()},
        fresh={p: fresh_units(fresh, p) for p in pairs},
        free={p: int(n) for p, n in zip(pairs, free, strict=True)},
    )


def fresh_units(fresh: Mapping[str, str | int], pair: str) -> int:
    """The units of the pair's fresh run, out of the launch's `fresh` hash."""
    return int(fresh.get(f"{pair}:t", 0)) - int(fresh.get(f"{pair}:n", 0))


async def hold_log(scripts: Scripts, keys: LaunchKeys, count: int = -1) -> list[str]:
    """The oldest `count` (-1: all) lines of the launch's hold event log."""
    last = count - 1 if count > 0 else -1
    with reading():
        return [str(line) for line in await scripts.client.lrange(keys.evlog, 0, last)]


async def hold_ms(scripts: Scripts, keys: LaunchKeys) -> int | None:
    """How long the launch's holds last, in ms; None while Redis has no settings for it."""
    with reading():
        found = await scripts.client.hget(keys.meta, HOLD_MS)
    return None if found is None else int(found)


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
