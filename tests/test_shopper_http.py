"""A shopper's whole path over HTTP: hold, release, hold, confirm, see it, cancel it."""

from __future__ import annotations

import asyncio

from litestar.testing import AsyncTestClient

PROBLEM = "application/problem+json"


async def _setup(client: AsyncTestClient, key: str) -> dict[str, str]:  # type: ignore[type-arg]
    h = {"Authorization": f"Bearer {key}"}
    ok = [
        await client.post(
            "/api/admin/launches",
            json={
                "id": "drop",
                "name": "Drop",
                "per_customer_limit": 2,
                "fairness_mode": "fifo",
                "admit_rate": 1000,
            },
            headers=h,
        ),
        await client.post(
            "/api/admin/launches/drop/stores", json={"id": "S1", "name": "One"}, headers=h
        ),
        await client.post(
            "/api/admin/launches/drop/skus", json={"id": "K1", "name": "Phone"}, headers=h
        ),
        await client.put(
            "/api/admin/launches/drop/allocations/S1/K1", json={"allocated": 3}, headers=h
        ),
        await client.post(
            "/api/admin/launches/drop/registrations/import",
            content=b"email\nada@example.com\nbob@example.com\ncy@example.com\n",
            headers={**h, "content-type": "text/csv"},
        ),
        await client.post(
            "/api/admin/launches/drop/transitions",
            json={"action": "advance", "to": "checkin_open"},
            headers=h,
        ),
    ]
    assert [r.status_code for r in ok] == [201, 201, 201, 200, 200, 200], [r.text for r in ok]
    selling = await client.post(
        "/api/admin/launches/drop/transitions",
        json={"action": "advance", "to": "selling"},
        headers=h,
    )
    assert selling.status_code == 200
    tickets = {}
    for rid in (1, 2, 3):
        r = await client.post(f"/api/admin/launches/drop/registrations/{rid}/token", headers=h)
        checked_in = await client.post(
            "/api/launches/drop/queue/checkin",
            headers={"Authorization": f"Bearer {r.json()['token']}"},
        )
        tickets[str(rid)] = checked_in.json()["ticket"]
    for ticket in tickets.values():
        await _until_admitted(client, ticket)
    return tickets


async def _until_admitted(client: AsyncTestClient, ticket: str) -> None:  # type: ignore[type-arg]
    """Poll as a client would; the worker's snapshot refreshes every 200 ms."""
    for _ in range(100):
        status = (
            await client.get(
                "/api/launches/drop/queue/status", headers={"Authorization": f"Bearer {ticket}"}
            )
        ).json()
        if status["status"]["state"] == "admitted":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never admitted: {status}")


async def test_the_shopper_path(client: AsyncTestClient, admin_key: str) -> None:  # type: ignore[type-arg]
    tokens = await _setup(client, admin_key)
    ada = {"Authorization": f"Bearer {tokens['1']}", "X-Fairdrop-Channel": "app"}
    bob = {"Authorization": f"Bearer {tokens['2']}"}
    cy = {"Authorization": f"Bearer {tokens['3']}"}
    item = {"store_id": "S1", "sku_id": "K1"}

    token = (
        await client.post(
            "/api/admin/launches/drop/registrations/1/token",
            headers={"Authorization": f"Bearer {admin_key}"},
        )
    ).json()["token"]
    no_ticket = await client.post(
        "/api/launches/drop/holds", json=item, headers={"Authorization": f"Bearer {token}"}
    )
    assert no_ticket.status_code == 401, "a hold needs a queue ticket, not just a registration"
    first = await client.post("/api/launches/drop/holds", json=item, headers=cy)
    assert first.status_code == 201
    assert (
        await client.delete(f"/api/launches/drop/holds/{first.json()['hold_id']}", headers=cy)
    ).status_code == 204
    gone = await client.delete(f"/api/launches/drop/holds/{first.json()['hold_id']}", headers=cy)
    assert gone.status_code == 410 and gone.json()["type"].endswith("/hold-expired")
    used = await client.post("/api/launches/drop/holds", json=item, headers=cy)
    assert used.status_code == 403 and used.json()["type"].endswith("/not-admitted"), (
        "releasing ends the turn"
    )

    held = (await client.post("/api/launches/drop/holds", json=item, headers=ada)).json()
    # Bob cannot confirm or release Ada's hold: it is not his.
    stolen = await client.post(f"/api/launches/drop/holds/{held['hold_id']}/confirm", headers=bob)
    assert stolen.status_code == 404
    confirmed = await client.post(
        f"/api/launches/drop/holds/{held['hold_id']}/confirm", headers=ada
    )
    assert confirmed.status_code == 201
    body = confirmed.json()
    code = body["reservation"]["code"]
    assert body["code_display"].replace("-", "") == code and body["reservation"]["channel"] == "app"
    again = await client.post(f"/api/launches/drop/holds/{held['hold_id']}/confirm", headers=ada)
    assert again.json()["reservation"]["code"] == code, (
        "confirming twice gives the same reservation"
    )

    # Bob, once admitted, may hold up to the limit (2) while he is shopping.
    assert (
        await client.post("/api/launches/drop/holds", json=item, headers=bob)
    ).status_code == 201
    assert (
        await client.post("/api/launches/drop/holds", json=item, headers=bob)
    ).status_code == 201
    over = await client.post("/api/launches/drop/holds", json=item, headers=bob)
    assert over.status_code == 409 and over.headers["content-type"].startswith(PROBLEM)
    assert over.json()["type"].endswith("/limit-reached")
    launch = (await client.get("/api/launches/drop")).json()
    assert launch["availability"] == [{"store_id": "S1", "sku_id": "K1", "available": 0}]

    mine = (await client.get("/api/launches/drop/me", headers=ada)).json()
    assert [r["reservation"]["code"] for r in mine["reservations"]] == [code]
    rid = mine["reservations"][0]["reservation"]["id"]
    assert (
        await client.post(f"/api/launches/drop/reservations/{rid}/cancel", headers=bob)
    ).status_code == 404
    cancelled = await client.post(f"/api/launches/drop/reservations/{rid}/cancel", headers=ada)
    assert cancelled.status_code == 200 and cancelled.json()["reservation"]["status"] == "cancelled"
    twice = await client.post(f"/api/launches/drop/reservations/{rid}/cancel", headers=ada)
    assert twice.status_code == 409

    h = {"Authorization": f"Bearer {admin_key}"}
    stock = (await client.get("/api/admin/launches/drop/stock", headers=h)).json()
    assert stock["counts"] == [
        {
            "store_id": "S1",
            "sku_id": "K1",
            "allocated": 3,
            "available": 1,
            "held": 2,
            "confirmed": 0,
        }
    ]
    assert stock["postgres"] == {"S1:K1": [3, 0]}
    found = await client.get(
        f"/api/admin/launches/drop/reservations/by-code/{code.lower()[:5]}-{code[5:]}", headers=h
    )
    assert found.status_code == 200 and found.json()["status"] == "cancelled"
    typo = code[:3] + ("A" if code[3] != "A" else "B") + code[4:]
    assert (
        await client.get(f"/api/admin/launches/drop/reservations/by-code/{typo}", headers=h)
    ).status_code == 422
    kinds = [
        e["kind"] for e in (await client.get("/api/admin/launches/drop/events", headers=h)).json()
    ]
    assert {"reservation.confirmed", "reservation.cancelled", "launch.advance"} <= set(kinds)
