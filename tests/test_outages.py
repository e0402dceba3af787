"""Outages injected into real processes: a worker killed, Postgres or Redis stopped or
frozen, Redis flushed in a lull. Each checks what the shoppers saw and the invariants
afterwards (`tests/serve.py:assert_consistent`)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from service import errors
from service.auth.apikeys import create_key
from service.auth.tokens import ShopperClaims
from service.clock import FakeClock, SystemClock
from service.customers import links
from service.deps import Deps
from service.errors import PROBLEM_BASE
from service.infra import db
from service.infra.redis import create_redis
from service.infra.settings import Settings
from service.queue import status as queue_status
from service.stock.confirm import confirm
from service.stock.holds import reserve
from service.stock.reconciler import reconcile
from service.web.app import create_app
from service.web.fastpath import FastLane
from tests.outage_kit import PrivatePostgres, PrivateRedis, fairdrop_serve, wait_until
from tests.serve import (
    advance,
    assert_consistent,
    selling_launch,
    server_env,
    serving,
    stocked_launch,
    tickets_for,
)
from tests.test_unstorable import _PARAM, Route, routes

L = "drop"


def test_a_killed_worker_is_replaced_and_the_others_keep_serving(deps: Deps) -> None:
    with fairdrop_serve(server_env(deps.settings), workers=2) as served:
        wait_until(lambda: len(served.workers()) == 2, 30, "two workers")
        victim, survivor = served.workers()
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        # Meanwhile the other worker answers every request.
        for _ in range(20):
            assert httpx.get(f"{served.base}/healthz", timeout=5).status_code == 200
        wait_until(
            lambda: len(served.workers()) == 2 and victim.pid not in served.workers(),
            30,
            "a replacement worker",
        )
        assert served.proc.poll() is None, served.output()
        assert survivor.is_running()
        wait_until(served.healthy, 30, "answering after the respawn")


@dataclass
class Scene:
    """A selling launch with one of everything, and the credentials to reach it."""

    ids: dict[str, str]
    admin: dict[str, str]
    shopper: dict[str, str]
    ticket: dict[str, str]
    link: str


async def scene(deps: Deps) -> Scene:
    a, b, c = await selling_launch(deps, L, units=5, registrations=3)
    (ticket,) = await tickets_for(deps, L, [a])
    held = await reserve(deps, L, b, "S1", "K1")
    sold = await confirm(deps, L, c, (await reserve(deps, L, c, "S1", "K1")).hold_id)
    key = await create_key(deps.pool, "admin", label="walk")
    token = deps.signer.sign(ShopperClaims(L, c, deps.clock.now_ms() + 86_400_000))
    ids = {
        "launch_id": L,
        "hold_id": sold.hold_id,
        "reservation_id": str(sold.id),
        "code": sold.code,
        "store_id": "S1",
        "sku_id": "K1",
        "registration_id": str(c),
        "key_id": key.removeprefix("fd_").split("_")[0],
        "endpoint_id": "none",
        "delivery_id": "1",
        "file_path": "app.css",
        "path": "openapi.json",
    }
    assert held.hold_id and ticket
    return Scene(
        ids,
        {"Authorization": f"Bearer {key}"},
        {"Authorization": f"Bearer {token}"},
        {"Authorization": f"Bearer {ticket}"},
        links.manage_token(deps, L, c),
    )


# Bodies that get past validation, so that the handler reaches its backend.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/launches/{launch_id:str}/holds"): {"store_id": "S1", "sku_id": "K1"},
    ("POST", "/api/launches/{launch_id:str}/registrations"): {"email": "new@example.com"},
    ("POST", "/api/admin/launches/{launch_id:str}/transitions"): {"action": "pause"},
    ("PUT", "/api/admin/launches/{launch_id:str}/allocations/{store_id:str}/{sku_id:str}"): {
        "allocated": 6
    },
    ("POST", "/api/admin/launches"): {"id": "other", "name": "Other"},
    ("POST", "/api/admin/keys"): {"role": "agent"},
}
ME = ("GET", "/api/launches/{launch_id:str}/me")
CONFIRM = ("POST", "/api/launches/{launch_id:str}/holds/{hold_id:str}/confirm")  # confirmed
HOLD = ("POST", "/api/launches/{launch_id:str}/holds")
EVENTS = ("GET", "/api/launches/{launch_id:str}/queue/events")  # a stream while Redis is up


async def walk(
    client: httpx.AsyncClient, table: list[Route], s: Scene, skip: tuple[tuple[str, str], ...] = ()
) -> set[tuple[str, str]]:
    """Every route, as staff, as a shopper and with a queue ticket: a 4xx (refused before any backend is
    needed) or 503 `unavailable` with `Retry-After`, never another 5xx. Returns the
    routes that answered 503."""
    unavailable = set()
    for route in table:
        if (route.method, route.template) in skip:
            continue
        path = _PARAM.sub(lambda m: s.ids.get(m.group(1), "x"), route.template)
        body = BODIES.get((route.method, route.template))
        if body is None and route.method in ("POST", "PUT", "PATCH"):
            body = {}
        for who in (s.admin, s.shopper, s.ticket):
            r = await client.request(
                route.method,
                path,
                headers=who,
                json=body,
                params={"store": "S1", "token": s.link},
                timeout=30,
            )
            said = f"{route.method} {path}: {r.status_code} {r.text[:300]}"
            assert r.status_code < 500 or r.status_code == 503, said
            if r.status_code == 503:
                assert int(r.headers["retry-after"]) >= 1, said
                if route.template.startswith("/api/"):
                    assert r.json()["type"] == PROBLEM_BASE + "unavailable", said
                unavailable.add((route.method, route.template))
    return unavailable


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.close()


@pytest.fixture
async def pg_deps(
    private_pg: PrivatePostgres, settings: Settings, clock: FakeClock
) -> AsyncIterator[Deps]:
    """Deps on the private Postgres (statements limited to 1 s) and the shared Redis."""
    s = msgspec.structs.replace(
        settings, database_url=private_pg.url, db_schema="public", statement_timeout_seconds=1.0
    )
    await db.migrate_url(private_pg.url)
    pool = await db.create_pool(s, min_size=1, max_size=10)
    assert s.redis_url is not None
    redis = create_redis(s.redis_url)
    try:
        yield Deps(settings=s, pool=pool, redis=redis, clock=clock)
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{s.redis_prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        pool.terminate()


@contextlib.asynccontextmanager
async def app_client(deps: Deps) -> AsyncIterator[httpx.AsyncClient]:
    """The app (fast lane in front, as `fairdrop serve` runs it) on `deps`' backends."""
    settings = msgspec.structs.replace(deps.settings, background=False)
    app = FastLane(create_app(settings, deps.clock))
    async with AsyncTestClient(app, raise_server_exceptions=False) as client:  # type: ignore[arg-type]
        yield client


async def test_every_route_answers_503_while_postgres_is_stopped(
    pg_deps: Deps, private_pg: PrivatePostgres
) -> None:
    s = await scene(pg_deps)
    async with app_client(pg_deps) as client:
        table = routes(create_app(pg_deps.settings))
        assert (await client.get(f"/api/launches/{L}/me", headers=s.shopper)).status_code == 200
        private_pg.stop()
        unavailable = await walk(client, table, s, skip=(EVENTS,))
        assert {ME, CONFIRM} <= unavailable  # both were seen answering 500
        assert HOLD not in unavailable  # a hold needs Redis only
        assert len(unavailable) > 50, sorted(unavailable)
        assert (await client.get("/healthz")).status_code == 200  # alive, not ready
        assert (await client.get("/readyz")).status_code == 503
        # Back up: the pool reconnects by itself.
        private_pg.start()
        me = await client.get(f"/api/launches/{L}/me", headers=s.shopper, timeout=30)
        assert me.status_code == 200, me.text
    await pg_deps.pool.expire_connections()  # the test's own, killed with the server
    assert await assert_consistent(pg_deps, L) == {"S1:K1": (5, 3, 1, 1)}


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
async def redis_deps(private_redis: PrivateRedis, deps: Deps) -> AsyncIterator[Deps]:
    """Deps on the test's Postgres schema and the private Redis (commands limited to 1 s)."""
    s = msgspec.structs.replace(
        deps.settings, redis_url=private_redis.url, redis_timeout_seconds=1.0
    )
    redis = create_redis(private_redis.url, timeout=1.0)
    try:
        yield Deps(settings=s, pool=deps.pool, redis=redis, clock=deps.clock)
    finally:
        await redis.aclose()


async def test_every_route_answers_503_while_redis_is_stopped(
    redis_deps: Deps, private_redis: PrivateRedis
) -> None:
    s = await scene(redis_deps)
    async with app_client(redis_deps) as client:
        private_redis.stop()
        unavailable = await walk(client, routes(create_app(redis_deps.settings)), s)
        assert {HOLD, CONFIRM, EVENTS} <= unavailable
        assert (await client.get("/readyz")).status_code == 503
        # Back, empty (it kept nothing): the launch is rebuilt from Postgres on first use.
        private_redis.start()
        back = await client.get(f"/api/launches/{L}", timeout=30)
        assert back.status_code == 200, back.text
    # The live hold was lost with Redis; Postgres kept the rest (the walk's cancel too).
    (allocated, available, held, _) = (await assert_consistent(redis_deps, L))["S1:K1"]
    assert (allocated, held) == (5, 0)
    assert back.json()["availability"] == [
        {"store_id": "S1", "sku_id": "K1", "available": available}
    ]


async def test_a_status_is_not_answered_from_a_view_that_stopped_moving(
    redis_deps: Deps, private_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Polls are answered from each worker's memory; once its refreshes have failed for
    a while (Redis out), a poll or the event stream asks Redis, and is a 503."""
    s = await scene(redis_deps)
    monkeypatch.setattr(queue_status, "STALE_SECONDS", 0.5)
    path = f"/api/launches/{L}/queue/status"
    async with app_client(redis_deps) as client:
        assert (await client.get(path, headers=s.ticket)).status_code == 200
        private_redis.stop()
        await asyncio.sleep(1.0)  # longer than a view may go unrefreshed here
        for route in (path, f"/api/launches/{L}/queue/events"):
            r = await client.get(route, headers=s.ticket, timeout=30)
            assert r.status_code == 503, (route, r.text)
            assert int(r.headers["retry-after"]) >= 1


BOUND = 20.0
"""Seconds within which a request must answer while a backend answers nothing: its
limits are a second or two here; the rest is a loaded machine's slack."""


async def _bounded(client: httpx.AsyncClient, s: Scene) -> list[httpx.Response]:
    """A shopper's, a ticket holder's and staff's requests at once, each within BOUND."""
    shopper_paths = [("GET", f"/api/launches/{L}/me"), ("GET", f"/api/launches/{L}")]
    sold = f"/api/launches/{L}/holds/{s.ids['hold_id']}/confirm"
    calls = [
        *(client.request(m, p, headers=s.shopper) for m, p in shopper_paths),
        client.post(sold, headers=s.shopper),
        client.post(f"/api/launches/{L}/holds", json=BODIES[HOLD], headers=s.ticket),
        client.get(
            f"/api/admin/launches/{L}/reservations/by-code/{s.ids['code']}", headers=s.admin
        ),
        client.get(f"/api/admin/launches/{L}/stock", headers=s.admin),
    ]
    return list(await asyncio.gather(*(asyncio.wait_for(c, BOUND) for c in calls)))


def _unavailable(answers: list[httpx.Response], at_least: int) -> None:
    for r in answers:
        assert r.status_code < 500 or r.status_code == 503, (r.request.url, r.text)
    down = [r for r in answers if r.status_code == 503]
    assert len(down) >= at_least, [(r.request.url.path, r.status_code) for r in answers]
    assert all(int(r.headers["retry-after"]) >= 1 for r in down)


async def test_requests_answer_503_in_bounded_time_while_postgres_is_frozen(
    pg_deps: Deps, private_pg: PrivatePostgres
) -> None:
    s = await scene(pg_deps)
    async with app_client(pg_deps) as client:
        with private_pg.frozen():
            _unavailable(await _bounded(client, s), at_least=5)  # all but the hold
        me = await client.get(f"/api/launches/{L}/me", headers=s.shopper, timeout=30)
        assert me.status_code in (200, 503), me.text
    await pg_deps.pool.expire_connections()
    assert await assert_consistent(pg_deps, L) == {"S1:K1": (5, 3, 1, 1)}


async def test_requests_answer_503_in_bounded_time_while_redis_is_frozen_or_busy(
    redis_deps: Deps, private_redis: PrivateRedis
) -> None:
    s = await scene(redis_deps)
    async with app_client(redis_deps) as client:
        with private_redis.frozen():
            _unavailable(await _bounded(client, s), at_least=3)
        with private_redis.busy():
            _unavailable(await _bounded(client, s), at_least=3)
        after = await client.get(f"/api/launches/{L}", timeout=30)
        assert after.status_code == 200, after.text
    assert await assert_consistent(redis_deps, L) == {"S1:K1": (5, 3, 1, 1)}


async def test_redis_flushed_in_a_lull_the_sale_goes_on_by_itself(deps: Deps) -> None:
    """The real server, on the real clock: the launch's keys are lost while nobody
    polls or holds. Admission (one a second, as far as the 13 units go) resumes by
    itself, and a shopper admitted only after the loss holds a unit."""
    regs = await stocked_launch(
        deps, L, units=13, registrations=20, fairness_mode="fifo", admit_rate=1.0
    )
    await advance(deps, L, "checkin_open", "selling")
    tickets = await tickets_for(deps, L, regs)
    window = deps.keys(L).window
    with serving(deps.settings) as base:
        await _until(lambda: _count(deps.redis.zcard(window), 1), "admission started")
        await flush_launch(deps)
        # Nothing but the server's own admission refresh touches the launch now.
        await _until(lambda: _count(deps.redis.zcard(window), 13), "all 13 units offered")
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            hold = await client.post(
                f"/api/launches/{L}/holds", json=BODIES[HOLD], headers=_bearer(tickets[12])
            )
        assert hold.status_code == 201, hold.text
    assert await assert_consistent(deps, L) == {"S1:K1": (13, 12, 1, 0)}


async def _count(n: Awaitable[int], at_least: int) -> bool:
    return await n >= at_least


async def _until(check: Callable[[], Awaitable[bool]], what: str, within: float = 60) -> None:
    """Retry `check` (50 ms apart) until it holds; a bound on the wall clock."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        await asyncio.sleep(0.05)


async def flush_launch(deps: Deps) -> None:
    """Lose the launch's keys, as a Redis restart without persistence would."""
    keys = deps.keys(L).all
    assert await deps.redis.delete(*keys) > 0
    assert await deps.redis.hget(deps.keys(L).meta, "loaded") is None


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_confirms_caught_in_a_frozen_postgres_sell_each_unit_once(
    pg_deps: Deps, private_pg: PrivatePostgres
) -> None:
    """Postgres frozen (SIGSTOP) for longer than the confirm deadline while confirms are
    in flight and the reconciler runs, on the real clock. Afterwards every code a
    shopper was given is a live reservation, no unit is sold twice, and Redis offers
    none of the sold units again (however the inserts and the reconciler interleaved)."""
    deps = Deps(
        msgspec.structs.replace(pg_deps.settings, confirm_deadline_seconds=1.0),
        pg_deps.pool,
        pg_deps.redis,
        SystemClock(),
    )
    regs = await selling_launch(deps, L, units=6, registrations=9, hold_seconds=60)
    held = {r: await reserve(deps, L, r, "S1", "K1") for r in regs[:6]}
    tokens = {
        r: deps.signer.sign(ShopperClaims(L, r, deps.clock.now_ms() + 86_400_000)) for r in regs
    }

    async def confirm_over_http(client: httpx.AsyncClient, reg: int) -> httpx.Response:
        path = f"/api/launches/{L}/holds/{held[reg].hold_id}/confirm"
        return await client.post(path, headers=_bearer(tokens[reg]))

    async with app_client(deps) as client:
        with private_pg.frozen():
            confirming = [asyncio.create_task(confirm_over_http(client, r)) for r in held]
            await asyncio.sleep(1.5)  # the freeze outlasts the confirm deadline
            settling = asyncio.create_task(reconcile(deps, L))
            await asyncio.sleep(1.5)
        first = await asyncio.gather(*confirming)
        await settling
        assert all(r.status_code in (201, 503) for r in first), [r.text for r in first]
        # Whatever was left confirming is finished by the reconciler, or by a retry.
        await _until(lambda: _settled(deps), "no hold left confirming")
        again = [await confirm_over_http(client, r) for r in held]
    codes = {r.json()["reservation"]["code"] for r in [*first, *again] if r.status_code == 201}
    assert all(r.status_code == 201 for r in again), [r.text for r in again]
    live = await pg_deps.pool.fetch(
        "SELECT code, unit_no FROM reservations WHERE launch_id = $1 AND unit_no IS NOT NULL", L
    )
    assert codes == {r["code"] for r in live} and len(live) == 6
    assert await assert_consistent(deps, L) == {"S1:K1": (6, 0, 0, 6)}
    with pytest.raises(errors.SoldOut):  # nothing sold came back to stock
        await reserve(deps, L, regs[6], "S1", "K1")


async def _settled(deps: Deps) -> bool:
    await reconcile(deps, L)
    return await deps.redis.zcard(deps.keys(L).confirming) == 0
