"""The pickup desk: staff see only their store, collect exactly once, and a second
desk is told when and by whom."""

from __future__ import annotations

import asyncio

import pytest
from litestar.testing import AsyncTestClient

from service import errors
from service.auth.apikeys import create_key
from service.deps import Deps
from service.pickup import desk
from service.stock import confirm, holds, reservations
from service.stock.codes import format_code
from service.stock.counts import redis_counts
from tests.serve import selling_launch


async def _reserve(deps: Deps, reg: int, store: str) -> str:
    hold = await holds.reserve(deps, "drop", reg, store, "K1")
    return (await confirm.confirm(deps, "drop", reg, hold.hold_id)).code


async def test_collect_exactly_once_under_a_race(deps: Deps) -> None:
    regs = await selling_launch(deps, stores=("S1", "S2"), units=5, registrations=6)
    codes = [await _reserve(deps, r, "S1") for r in regs[:3]]
    results = await asyncio.gather(
        *(desk.collect(deps, "drop", "S1", codes[0], actor=f"key:desk{i}") for i in range(6)),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, desk.PickupCard)]
    lost = [r for r in results if isinstance(r, errors.AlreadyCollected)]
    assert len(won) == 1 and len(lost) == 5
    assert lost[0].extra["collected_by"] == won[0].collected_by
    events = await deps.pool.fetchval(
        "SELECT count(*) FROM events WHERE kind = 'reservation.collected'"
    )
    assert events == 1


async def test_cancel_and_collect_race_has_one_winner(deps: Deps) -> None:
    regs = await selling_launch(deps, stores=("S1",), units=5, registrations=5)
    for reg in regs[:4]:
        code = await _reserve(deps, reg, "S1")
        rid = await deps.pool.fetchval("SELECT id FROM reservations WHERE code = $1", code)
        cancel_r, collect_r = await asyncio.gather(
            reservations.cancel(deps, "drop", rid, registration_id=reg, actor="t", channel="web"),
            desk.collect(deps, "drop", "S1", code, actor="key:desk"),
            return_exceptions=True,
        )
        assert isinstance(cancel_r, errors.Conflict) != isinstance(collect_r, errors.NotCollectable)
        status = await deps.pool.fetchval("SELECT status FROM reservations WHERE id = $1", rid)
        assert status in ("cancelled", "collected")
        assert (status == "collected") == isinstance(collect_r, desk.PickupCard)
    live = await deps.pool.fetchval("SELECT count(*) FROM reservations WHERE unit_no IS NOT NULL")
    free = sum(c.available for c in await redis_counts(deps, "drop"))
    assert live + free == 5, "every cancelled unit came back once"


async def test_the_desk_over_http(deps: Deps, client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    regs = await selling_launch(deps, stores=("S1", "S2"), units=5, registrations=4)
    mine = await _reserve(deps, regs[0], "S1")
    theirs = await _reserve(deps, regs[1], "S2")
    staff_s1 = {"Authorization": f"Bearer {await create_key(deps.pool, 'staff', store_id='S1')}"}
    agent = {"Authorization": f"Bearer {await create_key(deps.pool, 'agent')}"}
    base = "/api/staff/launches/drop"

    typed = format_code(mine).lower().replace("0", "o")
    card = await client.get(f"{base}/reservations/{typed}", headers=staff_s1)
    assert card.status_code == 200, card.text
    assert (card.json()["code"], card.json()["store_id"], card.json()["status"]) == (
        mine,
        "S1",
        "confirmed",
    )
    for path in (f"/reservations/{theirs}", f"/reservations/{theirs}/collect"):
        method = client.post if path.endswith("collect") else client.get
        other = await method(base + path, headers=staff_s1)
        assert other.status_code == 404, "another store's reservation does not exist for this desk"
    bad = mine[:-1] + ("A" if mine[-1] != "A" else "B")
    assert (
        (await client.get(f"{base}/reservations/{bad}", headers=staff_s1))
        .json()["type"]
        .endswith("/invalid-code")
    )
    first = await client.post(f"{base}/reservations/{mine}/collect", headers=staff_s1)
    assert first.status_code == 200 and first.json()["status"] == "collected"
    second = await client.post(f"{base}/reservations/{mine}/collect", headers=staff_s1)
    assert second.status_code == 409 and second.json()["type"].endswith("/already-collected")
    assert "by staff at S1." in second.json()["detail"], "a key without a label: its store"
    assert second.json()["collected_by"] == "staff at S1"
    listing = (await client.get(f"{base}/pickups", headers=staff_s1)).json()
    assert (listing["expected"], listing["collected"], listing["outstanding"]) == (1, 1, 0)
    assert (await client.get(f"{base}/pickups", headers=agent)).status_code == 403
    assert (await client.get(f"{base}/pickups")).status_code == 401


@pytest.mark.parametrize("typed", ["", "abc", "UUUUUUUUUUU"])
async def test_bad_codes_are_named(deps: Deps, typed: str) -> None:
    with pytest.raises(errors.InvalidCode):
        await desk.lookup(deps, "drop", "S1", typed)
