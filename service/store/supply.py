"""A launch's stock as a whole in Redis: loading it from Postgres, units added, returned,
moved and withdrawn (the stock outbox, allocations, mend), its settings and its counts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import msgspec

from service import errors
from service.infra.keys import LaunchKeys
from service.infra.redis import Scripts
from service.store.records import HOLD_MS, LIMIT, LOADED, SELLING, SUSPECT, reading
from service.store.stock import OK


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


async def hold_ms(scripts: Scripts, keys: LaunchKeys) -> int | None:
    """How long the launch's holds last, in ms; None while Redis has no settings for it."""
    with reading():
        found = await scripts.client.hget(keys.meta, HOLD_MS)
    return None if found is None else int(found)
