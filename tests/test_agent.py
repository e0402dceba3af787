"""The agent console: find a customer however the caller describes them, and see
their whole story across channels."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from service.auth.apikeys import create_key
from service.customers import search
from service.deps import Deps
from service.queue import registrations
from service.stock import confirm, holds, reservations
from service.stock.codes import format_code, new_code
from tests.serve import ACTOR, selling_launch


async def test_search_finds_one_customer_every_way(deps: Deps, client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    await selling_launch(deps, units=3, registrations=2, limit=2)
    await registrations.import_registrations(
        deps,
        "drop",
        [
            (
                1,
                {
                    "email": "Ada.Lovelace+launch@example.com",
                    "name": "Ada Lovelace",
                    "phone": "+44 20 7946 0958",
                },
            )
        ],
        **ACTOR,
    )
    ada = next(r for r in await registrations.list_registrations(deps, "drop") if r.name)
    hold = await holds.reserve(deps, "drop", ada.id, "S1", "K1")
    kept = await confirm.confirm(deps, "drop", ada.id, hold.hold_id, channel="app")
    hold = await holds.reserve(deps, "drop", ada.id, "S1", "K1")
    dropped = await confirm.confirm(deps, "drop", ada.id, hold.hold_id, channel="web")
    await reservations.cancel(
        deps,
        "drop",
        dropped.id,
        registration_id=None,
        actor="key:agent",
        channel="phone",
        reason="asked",
    )

    agent = {"Authorization": f"Bearer {await create_key(deps.pool, 'agent')}"}
    operator = {"Authorization": f"Bearer {await create_key(deps.pool, 'operator')}"}
    ways = [
        "ada.lovelace@EXAMPLE.com",
        "020 7946 0958",
        "+442079460958",
        "lovelace",
        format_code(kept.code).lower(),
        ada.public_id,
    ]
    for q in ways:
        reply = await client.get("/api/agent/customers", params={"q": q}, headers=agent)
        assert reply.status_code == 200, (q, reply.text)
        found = reply.json()
        assert [c["registration"]["id"] for c in found] == [ada.id], q
    story = found[0]
    assert {r["code"] for r in story["reservations"]} == {kept.code, dropped.code}
    kinds = [(e["kind"], e["channel"]) for e in story["timeline"]]
    assert ("registration.imported", "admin") in kinds
    assert ("reservation.confirmed", "app") in kinds and ("reservation.confirmed", "web") in kinds
    assert ("reservation.cancelled", "phone") in kinds
    assert (
        await client.get("/api/agent/customers", params={"q": "ab"}, headers=agent)
    ).status_code == 422
    assert (
        await client.get("/api/agent/customers", params={"q": "ada"}, headers=operator)
    ).status_code == 403
    assert (await client.get("/api/agent/customers", params={"q": "ada"})).status_code == 401


async def test_an_agent_cancels_with_a_reason_and_the_unit_comes_back(
    deps: Deps, client: AsyncTestClient
) -> None:  # type: ignore[type-arg]
    [reg] = await selling_launch(deps, units=1, registrations=1)
    hold = await holds.reserve(deps, "drop", reg, "S1", "K1")
    done = await confirm.confirm(deps, "drop", reg, hold.hold_id)
    agent = {"Authorization": f"Bearer {await create_key(deps.pool, 'agent', label='Sam')}"}
    url = f"/api/agent/launches/drop/reservations/{done.id}/cancel"
    assert (await client.post(url, json={"reason": ""}, headers=agent)).status_code == 400
    cancelled = await client.post(
        url, json={"reason": "customer called: cannot come"}, headers=agent
    )
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert (await client.post(url, json={"reason": "again"}, headers=agent)).status_code == 409
    event = await deps.pool.fetchrow(
        "SELECT actor, channel, data FROM events WHERE kind = 'reservation.cancelled'"
    )
    assert event["channel"] == "phone" and event["actor"].startswith("key:")
    assert event["data"]["reason"] == "customer called: cannot come"
    assert await deps.redis.zcard(deps.keys("drop").free) == 1, "the unit is back, once"


def test_a_typed_code_starting_with_r_is_not_taken_for_a_public_id() -> None:
    code = next(c for c in iter(new_code, "") if c.startswith("R"))  # one in 32
    where, args = search._criteria(format_code(code).lower(), "DE")
    assert "reservations" in where and args == [code]
    where, args = search._criteria("r" + code[:12].lower().ljust(12, "0"), "DE")
    assert "public_id" in where
