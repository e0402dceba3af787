"""Hold events: every script's `log` line reaches Postgres once, however many drain."""

from __future__ import annotations

import asyncio

from service.deps import Deps
from service.stock.hold_log import drain_events, hold_events, parse_hold_event
from service.stock.holds import release, reserve
from tests.stock_kit import seed_launch

L = "ev1"


def test_a_line_reads_back_field_by_field() -> None:
    e = parse_hold_event("held|0a1b|42|S-1|K_2|1800000000123")
    assert (e.kind, e.hold, e.reg, e.store, e.sku, e.at_ms) == (
        "held",
        "0a1b",
        "42",
        "S-1",
        "K_2",
        1_800_000_000_123,
    )


async def test_racing_drainers_copy_each_event_exactly_once(deps: Deps) -> None:
    regs = await seed_launch(deps, L, hold_seconds=300, limit=10, allocs=[200, 0, 0, 0], regs=4)
    made = [await reserve(deps, L, regs[i % 4], "S1", "K1") for i in range(40)]
    for hold in made[:10]:
        await release(deps, L, hold.registration_id, hold.hold_id)
    logged = await hold_events(deps, L)
    assert len(logged) == 50 and logged[0].kind == "held" and logged[-1].kind == "released"

    async def drainer() -> int:
        copied = 0
        while n := await drain_events(deps, L, batch=7, most=7):  # one batch a call
            copied += n
        return copied

    copied = await asyncio.gather(*(drainer() for _ in range(4)))
    assert sum(copied) == 50, "each line drained once: none skipped, none twice"
    assert await hold_events(deps, L) == []
    rows = await deps.pool.fetch(
        "SELECT kind, data->>'hold' AS hold FROM events WHERE launch_id = $1 AND kind LIKE 'hold.%'",
        L,
    )
    assert sorted((r["kind"], r["hold"]) for r in rows) == sorted(
        [("hold.held", h.hold_id) for h in made] + [("hold.released", h.hold_id) for h in made[:10]]
    )


async def test_one_drain_keeps_up_with_a_long_log(deps: Deps) -> None:
    regs = await seed_launch(deps, L, hold_seconds=300, limit=10, allocs=[200, 0, 0, 0], regs=4)
    for i in range(30):
        await reserve(deps, L, regs[i % 4], "S1", "K1")
    # Batches of 7 until the log is empty, in one call; bounded by `most`.
    assert await drain_events(deps, L, batch=7, most=14) == 14
    assert await drain_events(deps, L, batch=7) == 16
    assert await hold_events(deps, L) == []
