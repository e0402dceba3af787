"""The waiting room over HTTP: check in, the same place again, status, the event stream."""

from __future__ import annotations

import asyncio
import json

import msgspec
from litestar.testing import AsyncTestClient

from service.infra.settings import Settings
from service.web.app import create_app


async def test_checkin_status_and_stream(client: AsyncTestClient, admin_key: str) -> None:  # type: ignore[type-arg]
    h = {"Authorization": f"Bearer {admin_key}"}
    launch = {"id": "w1", "name": "W", "fairness_mode": "prequeue-shuffle", "admit_rate": 0}
    assert (await client.post("/api/admin/launches", json=launch, headers=h)).status_code == 201
    await client.post("/api/admin/launches/w1/stores", json={"id": "S1", "name": "S"}, headers=h)
    await client.post("/api/admin/launches/w1/skus", json={"id": "K1", "name": "K"}, headers=h)
    await client.put("/api/admin/launches/w1/allocations/S1/K1", json={"allocated": 3}, headers=h)
    emails = "email\n" + "".join(f"p{i}@example.com\n" for i in range(5))
    await client.post(
        "/api/admin/launches/w1/registrations/import",
        content=emails.encode(),
        headers={**h, "content-type": "text/csv"},
    )
    tokens = [
        (await client.post(f"/api/admin/launches/w1/registrations/{i}/token", headers=h)).json()[
            "token"
        ]
        for i in range(1, 6)
    ]
    shopper = [{"Authorization": f"Bearer {t}"} for t in tokens]
    closed = await client.post("/api/launches/w1/queue/checkin", headers=shopper[0])
    assert closed.status_code == 409 and closed.json()["type"].endswith("/checkin-closed")

    await client.post(
        "/api/admin/launches/w1/transitions",
        json={"action": "advance", "to": "registration_closed"},
        headers=h,
    )
    commitment = (await client.get("/api/launches/w1/draw")).json()
    assert commitment["seed"] is None and commitment["roster_size"] == 5
    await client.post(
        "/api/admin/launches/w1/transitions",
        json={"action": "advance", "to": "checkin_open"},
        headers=h,
    )
    first = await client.post("/api/launches/w1/queue/checkin", headers=shopper[0])
    assert first.status_code == 200 and first.json()["rank"] is None
    assert "fd_ticket" in first.cookies
    ticket = first.json()["ticket"]
    status = (
        await client.get(
            "/api/launches/w1/queue/status", headers={"Authorization": f"Bearer {ticket}"}
        )
    ).json()
    assert status["status"]["state"] == "prequeue"
    for s in shopper[1:]:
        await client.post("/api/launches/w1/queue/checkin", headers=s)

    await client.post(
        "/api/admin/launches/w1/transitions", json={"action": "advance", "to": "selling"}, headers=h
    )
    published = (await client.get("/api/launches/w1/draw/published")).json()
    assert len(published["order"]) == 5 and published["seed"]
    # The pre-queue ticket is upgraded once this worker's snapshot (refreshed every
    # 200 ms) has seen the draw.
    for _ in range(100):
        out = (
            await client.get(
                "/api/launches/w1/queue/status", headers={"Authorization": f"Bearer {ticket}"}
            )
        ).json()
        if out["ticket"] is not None:
            break
        await asyncio.sleep(0.05)
    assert out["ticket"] is not None and out["status"]["state"] == "waiting"
    rank = out["status"]["rank"]
    assert (
        0 <= rank < 5
        and out["status"]["position"] == rank + 1
        and out["status"]["eta_seconds"] is None
    )
    again = (await client.post("/api/launches/w1/queue/checkin", headers=shopper[0])).json()
    assert again["rank"] == rank, "checking in again returns the same place"

    forged = await client.get(
        "/api/launches/w1/queue/status", headers={"Authorization": "Bearer x.y"}
    )
    assert forged.status_code == 401
    other = await client.get(
        "/api/launches/w2/queue/status", headers={"Authorization": f"Bearer {out['ticket']}"}
    )
    assert other.status_code == 401
    not_a_ticket = await client.get("/api/launches/w1/queue/status", headers=shopper[0])
    assert not_a_ticket.status_code == 401


async def test_the_event_stream_speaks_sse(settings: Settings, admin_key: str) -> None:
    import httpx

    from tests.serve import serving

    h = {"Authorization": f"Bearer {admin_key}"}
    with serving(settings) as base:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            await http.post(
                "/api/admin/launches",
                json={"id": "w2", "name": "W", "fairness_mode": "fifo"},
                headers=h,
            )
            await http.post(
                "/api/admin/launches/w2/registrations/import",
                json=[{"email": "a@example.com"}],
                headers=h,
            )
            token = (
                await http.post("/api/admin/launches/w2/registrations/1/token", headers=h)
            ).json()["token"]
            await http.post(
                "/api/admin/launches/w2/transitions",
                json={"action": "advance", "to": "checkin_open"},
                headers=h,
            )
            ticket = (
                await http.post(
                    "/api/launches/w2/queue/checkin", headers={"Authorization": f"Bearer {token}"}
                )
            ).json()["ticket"]
            async with http.stream(
                "GET",
                "/api/launches/w2/queue/events",
                headers={"Authorization": f"Bearer {ticket}"},
            ) as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                lines = []
                async for line in stream.aiter_lines():
                    lines.append(line)
                    if line.startswith("data:"):
                        break
    assert "event: status" in lines
    event = json.loads(lines[-1][5:])
    assert event["status"]["rank"] == 0 and event["status"]["state"] in ("waiting", "sold_out")


async def test_a_flood_of_polls_is_told_to_wait(settings: Settings, admin_key: str) -> None:
    app = create_app(msgspec.structs.replace(settings, background=False, rate_limits=True))
    h = {"Authorization": f"Bearer {admin_key}"}
    async with AsyncTestClient(app) as client:
        await client.post(
            "/api/admin/launches",
            json={"id": "w3", "name": "W", "fairness_mode": "fifo"},
            headers=h,
        )
        await client.post(
            "/api/admin/launches/w3/registrations/import",
            json=[{"email": "a@example.com"}],
            headers=h,
        )
        token = (
            await client.post("/api/admin/launches/w3/registrations/1/token", headers=h)
        ).json()["token"]
        await client.post(
            "/api/admin/launches/w3/transitions",
            json={"action": "advance", "to": "checkin_open"},
            headers=h,
        )
        ticket = (
            await client.post(
                "/api/launches/w3/queue/checkin", headers={"Authorization": f"Bearer {token}"}
            )
        ).json()["ticket"]
        codes = [
            (
                await client.get(
                    "/api/launches/w3/queue/status", headers={"Authorization": f"Bearer {ticket}"}
                )
            )
            for _ in range(20)
        ]
    limited = [r for r in codes if r.status_code == 429]
    assert codes[0].status_code == 200 and limited, "a burst beyond the limit is refused"
    assert limited[0].headers["retry-after"].isdigit()
    assert limited[0].headers["content-type"].startswith("application/problem+json")
    assert limited[0].json()["type"].endswith("/too-many-requests")
