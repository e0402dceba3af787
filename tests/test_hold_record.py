"""reserve writes a hold's JSON record by hand (cjson.encode cost it ~12k instructions
in Redis): the record must read back, in Python and in Lua, as the fields it stands for."""

from __future__ import annotations

import json

from service.deps import Deps
from service.stock.holds import Hold, reserve
from service.store.records import HoldRecord, hold_record
from service.store.stock import holds_expiring
from tests.stock_kit import seed_launch

L = "rec"

# cjson.decode, then cjson.encode: what every other script sees of the record.
_ROUND_TRIP = "return cjson.encode(cjson.decode(redis.call('HGET', KEYS[1], ARGV[1])))"


def _expected(hold: Hold, slot: int, queued: int | bool) -> dict[str, object]:
    return {
        "r": str(hold.registration_id),
        "s": hold.store_id,
        "k": hold.sku_id,
        "u": hold.unit_no,
        "l": slot,
        "e": hold.expires_ms,
        "st": "held",
        "q": queued,
    }


async def test_the_record_reads_back_as_its_fields_vouched_and_queued(deps: Deps) -> None:
    regs = await seed_launch(deps, L, hold_seconds=300, limit=3, allocs=[0, 0, 0, 12])
    keys = deps.keys(L)
    made: list[tuple[Hold, int, int | bool]] = []
    for slot in range(3):  # one customer's three limit slots, vouched for by staff
        made.append((await reserve(deps, L, regs[0], "S2", "K2"), slot, False))
    # A shopper from the queue: admitted (their rank's window open) by hand.
    await deps.redis.zadd(keys.window, {"7": deps.clock.now_ms() + 60_000})
    # Its record carries the rank, so a confirmation can give the turn back.
    made.append((await reserve(deps, L, regs[1], "S2", "K2", rank=7), 0, 7))
    assert sorted(h.unit_no for h, _, _ in made) == [0, 1, 2, 3]
    for hold, slot, queued in made:
        raw = await deps.redis.hget(keys.holds, hold.hold_id)
        assert raw is not None
        assert json.loads(raw) == _expected(hold, slot, queued)
        again = await deps.redis.eval(_ROUND_TRIP, 1, keys.holds, hold.hold_id)
        assert json.loads(again) == _expected(hold, slot, queued)


async def test_the_store_reads_the_record_as_written_and_as_cjson_rewrites_it(
    deps: Deps,
) -> None:
    regs = await seed_launch(deps, L, hold_seconds=300, limit=3, allocs=[0, 0, 0, 12])
    keys = deps.keys(L)
    await deps.redis.zadd(keys.window, {"7": deps.clock.now_ms() + 60_000})
    hold = await reserve(deps, L, regs[1], "S2", "K2", rank=7)
    expected = HoldRecord(
        registration_id=regs[1],
        store_id="S2",
        sku_id="K2",
        unit_no=hold.unit_no,
        expires_ms=hold.expires_ms,
        state="held",
        slot=0,
        rank=7,
    )
    found = await holds_expiring(deps.scripts, keys, after_ms=0, upto_ms=hold.expires_ms)
    assert found == [(hold.hold_id, expected)]
    again = await deps.redis.eval(_ROUND_TRIP, 1, keys.holds, hold.hold_id)
    assert hold_record(again) == expected
