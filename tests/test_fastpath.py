"""The fast lane answers exactly what the routed handlers would: the status poll, leaving
errors and cookies to the routed handler, and the confirm, refusals included."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar
from litestar.testing import AsyncTestClient
from litestar.types import Receive, Scope, Send

from service.auth.tokens import ShopperClaims
from service.clock import FakeClock
from service.deps import Deps
from service.infra.settings import Settings
from service.queue import checkin
from service.stock import holds
from service.web.app import create_app
from service.web.fastpath import FAST_ROUTES, FastLane
from tests.serve import advance, assert_consistent, selling_launch, stocked_launch

A = {"actor": "test", "channel": "admin"}


class Recorder:
    """The routed app, noting each HTTP path that reaches it."""

    def __init__(self, app: Litestar) -> None:
        self.inner, self.paths = app, list[str]()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.inner(scope, receive, send)


async def _tickets(deps: Deps, n: int) -> list[str]:
    regs = await stocked_launch(deps, "fp", registrations=n, fairness_mode="fifo", admit_rate=1.0)
    await advance(deps, "fp", "checkin_open")
    return [(await checkin.check_in(deps, "fp", r)).ticket for r in regs]


async def test_fast_and_routed_answers_agree(
    settings: Settings, deps: Deps, clock: FakeClock
) -> None:
    tickets = await _tickets(deps, 3)
    routed = Recorder(create_app(msgspec.structs.replace(settings, background=False), clock))
    fast = FastLane(routed)  # type: ignore[arg-type]
    async with AsyncTestClient(fast) as client:  # type: ignore[arg-type]
        status = "/api/launches/fp/queue/status"
        for n, ticket in enumerate(tickets):
            bearer = {"Authorization": f"Bearer {ticket}"}
            quick = await client.get(status, headers=bearer)
            assert routed.paths == [], "a genuine ticket is answered beside the framework"
            slow = await client.request("GET", status + "/", headers=bearer)  # routed
            assert routed.paths == [status + "/"]
            routed.paths.clear()
            assert quick.status_code == slow.status_code == 200
            assert quick.headers["content-type"] == "application/json"
            assert quick.json() == slow.json()
            assert quick.json()["status"]["rank"] == n
        client.cookies.set("fd_ticket", tickets[1])
        cookie = await client.get(status)
        assert cookie.json()["status"]["rank"] == 1 and routed.paths == []
        client.cookies.clear()

        forged = await client.get(status, headers={"Authorization": "Bearer nope.nope"})
        other = await client.get(
            "/api/launches/elsewhere/queue/status",
            headers={"Authorization": f"Bearer {tickets[0]}"},
        )
        missing = await client.get(status)
        assert [r.status_code for r in (forged, other, missing)] == [401, 401, 401]
        assert all(
            r.headers["content-type"] == "application/problem+json"
            for r in (forged, other, missing)
        )
        assert routed.paths == [status, "/api/launches/elsewhere/queue/status", status]


async def test_a_ticket_past_its_rate_limit_is_refused_by_the_routed_handler(
    settings: Settings, deps: Deps, clock: FakeClock
) -> None:
    [ticket] = await _tickets(deps, 1)
    app = create_app(msgspec.structs.replace(settings, background=False, rate_limits=True), clock)
    async with AsyncTestClient(FastLane(app)) as client:  # type: ignore[arg-type]
        bearer = {"Authorization": f"Bearer {ticket}"}
        answers = [
            await client.get("/api/launches/fp/queue/status", headers=bearer) for _ in range(12)
        ]
    codes = [r.status_code for r in answers]
    assert codes[0] == 200 and 429 in codes, codes
    refused = answers[codes.index(429)]
    assert refused.headers["retry-after"] and refused.json()["type"].endswith("too-many-requests")


async def test_confirms_in_the_fast_lane_answer_as_the_routed_handler(
    settings: Settings, deps: Deps, clock: FakeClock
) -> None:
    regs = await selling_launch(deps, "fc", units=5, registrations=3, limit=2, hold_seconds=60)
    expires = clock.now_ms() + 3_600_000
    token = {r: deps.signer.sign(ShopperClaims("fc", r, expires)) for r in regs}
    held = [await holds.reserve(deps, "fc", r, "S1", "K1") for r in regs]
    routed = Recorder(create_app(msgspec.structs.replace(settings, background=False), clock))

    def url(hold_id: str) -> str:
        return f"/api/launches/fc/holds/{hold_id}/confirm"

    def auth(reg: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {token[reg]}"}

    async with AsyncTestClient(FastLane(routed)) as client:  # type: ignore[arg-type]
        first = held[0]
        quick = await client.post(
            url(first.hold_id), headers={**auth(first.registration_id), "X-Fairdrop-Channel": "app"}
        )
        assert routed.paths == [], "a genuine token's confirm is answered beside the framework"
        again = await client.post(url(first.hold_id) + "/", headers=auth(first.registration_id))
        assert routed.paths == [url(first.hold_id) + "/"]  # the routed handler, same hold
        routed.paths.clear()
        assert quick.status_code == again.status_code == 201, quick.text
        assert quick.headers["content-type"] == "application/json"
        assert quick.json() == again.json(), "the same reservation, in the same shape"
        channel = await deps.pool.fetchval(
            "SELECT channel FROM events WHERE kind = 'reservation.confirmed'"
        )
        assert channel == "app"

        client.cookies.set("fd_shopper", token[held[1].registration_id])
        by_cookie = await client.post(url(held[1].hold_id))
        assert by_cookie.status_code == 201 and routed.paths == []
        client.cookies.clear()

        # Refusals come from the lane too, as the routed app words them.
        stolen = await client.post(url(held[2].hold_id), headers=auth(first.registration_id))
        stolen_routed = await client.post(
            url(held[2].hold_id) + "/", headers=auth(first.registration_id)
        )
        assert stolen.status_code == stolen_routed.status_code == 404
        assert stolen.headers["content-type"] == "application/problem+json"
        assert {k: v for k, v in stolen.json().items() if k != "instance"} == {
            k: v for k, v in stolen_routed.json().items() if k != "instance"
        }
        assert stolen.json()["instance"] == url(held[2].hold_id)
        routed.paths.clear()
        clock.advance(61)  # the last hold's time is up: the lane says so (a retry would not)
        late = await client.post(url(held[2].hold_id), headers=auth(held[2].registration_id))
        assert late.status_code == 410 and late.json()["type"].endswith("/hold-expired")
        assert routed.paths == []

        missing = await client.post(url(held[2].hold_id))  # no credentials: routed
        forged = await client.post(url(held[2].hold_id), headers={"Authorization": "Bearer x.y"})
        assert [missing.status_code, forged.status_code] == [401, 401]
        assert routed.paths == [url(held[2].hold_id)] * 2
    await assert_consistent(deps, "fc")


def test_each_fast_route_stands_beside_a_routed_handler_of_its_name(settings: Settings) -> None:
    app = create_app(msgspec.structs.replace(settings, background=False))
    routed = {
        (method, route.path): handler.operation_id
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        for method in getattr(handler, "http_methods", ())
    }
    for fast in FAST_ROUTES:
        assert routed.get((fast.method, fast.template)) == fast.operation_id, fast
        assert callable(getattr(FastLane, fast.lane))
