"""Rate limits: floods get 429 with Retry-After; polite clients never do. The shared
ones are counted in Redis (`take`), the status poll's in each worker (`Limiter`)."""

from __future__ import annotations

import asyncio
import time

import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from service.auth.apikeys import create_key
from service.clock import FakeClock
from service.deps import Deps
from service.errors import TooManyRequests
from service.stock.codes import format_code, new_code
from service.web.app import create_app
from service.web.ratelimit import (
    LOOKUPS_PER_KEY,
    SEARCHES_PER_KEY,
    SIGNUP_PER_ADDRESS,
    STATUS_PER_TICKET,
    Limit,
    Limiter,
    take,
)
from tests.serve import advance, serving, stocked_launch

LIMIT = Limit("status", rate=2.0, burst=3)


def test_a_burst_then_the_rate() -> None:
    limiter = Limiter()
    for _ in range(3):
        limiter.check(LIMIT, "ticket-a", now=100.0)
    with pytest.raises(TooManyRequests) as caught:
        limiter.check(LIMIT, "ticket-a", now=100.0)
    assert caught.value.status == 429 and caught.value.extra["retry_after"] == 1
    limiter.check(LIMIT, "ticket-b", now=100.0)  # keys are independent
    limiter.check(LIMIT, "ticket-a", now=100.5)  # one token back after 1/rate s
    with pytest.raises(TooManyRequests):
        limiter.check(LIMIT, "ticket-a", now=100.6)


def test_a_client_polling_at_the_rate_is_never_limited() -> None:
    limiter = Limiter()
    now = 0.0
    for _ in range(1000):
        limiter.check(LIMIT, "polite", now=now)
        now += 1 / LIMIT.rate


def test_disabled_limits_let_everything_through() -> None:
    limiter = Limiter(enabled=False)
    for _ in range(100):
        limiter.check(LIMIT, "load-test", now=0.0)


def test_a_workers_share_of_a_status_limit() -> None:
    assert STATUS_PER_TICKET.share(1) == STATUS_PER_TICKET
    two = STATUS_PER_TICKET.share(2)
    assert (two.rate, two.burst) == (1.0, 3.0)
    eight = STATUS_PER_TICKET.share(8)
    assert (eight.rate, eight.burst) == (1.0, 1.0), "never below an honest client's pace"
    limiter, now = Limiter(workers=8), 0.0
    for _ in range(100):  # told to poll every second or slower, all to this one worker
        limiter.check(STATUS_PER_TICKET, "honest", now=now)
        now += 1.0
    limiter = Limiter(workers=2)
    for _ in range(3):  # 3 of the 6 here, the other worker has the other 3
        limiter.check(STATUS_PER_TICKET, "greedy", now=0.0)
    with pytest.raises(TooManyRequests):
        limiter.check(STATUS_PER_TICKET, "greedy", now=0.0)


@pytest.fixture
def limited(deps: Deps) -> Deps:
    deps.settings = msgspec.structs.replace(deps.settings, rate_limits=True)
    return deps


async def test_shared_limits_burst_then_refill_on_the_injected_clock(
    limited: Deps, clock: FakeClock
) -> None:
    deps = limited
    for _ in range(3):
        await take(deps, "l1", (LIMIT, "ticket-a"))
    with pytest.raises(TooManyRequests) as caught:
        await take(deps, "l1", (LIMIT, "ticket-a"))
    assert caught.value.extra["retry_after"] == 1 and "status" in caught.value.detail
    await take(deps, "l1", (LIMIT, "ticket-b"))  # subjects are independent
    await take(deps, "l2", (LIMIT, "ticket-a"))  # and launches
    clock.advance(0.5)  # one back after 1/rate s
    await take(deps, "l1", (LIMIT, "ticket-a"))
    with pytest.raises(TooManyRequests):
        await take(deps, "l1", (LIMIT, "ticket-a"))
    clock.advance(1000)
    for _ in range(3):
        await take(deps, "l1", (LIMIT, "ticket-a"))


async def test_a_request_takes_from_all_its_limits_or_none(limited: Deps, clock: FakeClock) -> None:
    deps = limited
    wide, narrow = Limit("wide", rate=1, burst=10), Limit("narrow", rate=0.1, burst=2)
    await take(deps, "l1", (wide, "addr"), (narrow, "reg-1"))
    await take(deps, "l1", (wide, "addr"), (narrow, "reg-1"))
    with pytest.raises(TooManyRequests) as caught:
        await take(deps, "l1", (wide, "addr"), (narrow, "reg-1"))
    assert "narrow" in caught.value.detail and caught.value.extra["retry_after"] == 10
    for i in range(8):  # the refused one took nothing of the address's ten
        await take(deps, "l1", (wide, "addr"), (narrow, f"reg-{i + 2}"))
    with pytest.raises(TooManyRequests, match="wide"):
        await take(deps, "l1", (wide, "addr"), (narrow, "reg-99"))


async def test_the_counts_live_under_the_launchs_hash_tag_and_go_away(
    limited: Deps, clock: FakeClock
) -> None:
    deps = limited
    key = deps.keys("l1").limits
    assert key == f"{deps.settings.redis_prefix}fd:{{l1}}:limits"
    for i in range(50):
        await take(deps, "l1", (LIMIT, f"address-{i}"))
    assert await deps.redis.zcard(key) == 50
    assert 0 < await deps.redis.pttl(key) <= 500
    clock.advance(10)  # every bucket is full again: forgotten, a few at a time
    for _ in range(3):
        await take(deps, "l1", (LIMIT, "late"))
    assert await deps.redis.zcard(key) == 1


async def test_disabled_shared_limits_take_nothing(deps: Deps) -> None:
    for _ in range(10):
        await take(deps, "l1", (LIMIT, "load-test"))
    assert not await deps.redis.exists(deps.keys("l1").limits)


async def test_guessing_codes_at_the_desk_is_limited_per_key(
    limited: Deps, clock: FakeClock
) -> None:
    deps = limited
    await stocked_launch(deps, "l1", registrations=1)
    staff = {"Authorization": f"Bearer {await create_key(deps.pool, 'staff', store_id='S1')}"}
    other = {"Authorization": f"Bearer {await create_key(deps.pool, 'staff', store_id='S1')}"}
    base = "/api/staff/launches/l1/reservations"
    async with AsyncTestClient(create_app(deps.settings, clock=clock)) as http:
        answers = []
        for _ in range(int(LOOKUPS_PER_KEY.burst) + 10):
            r = await http.get(f"{base}/{format_code(new_code())}", headers=staff)
            answers.append(r.status_code)
        assert answers == [404] * int(LOOKUPS_PER_KEY.burst) + [429] * 10
        assert int(r.headers["retry-after"]) >= 1
        r = await http.post(f"{base}/{format_code(new_code())}/collect", headers=staff)
        assert r.status_code == 429, "collecting looks a code up too"
        r = await http.get(f"{base}/{format_code(new_code())}", headers=other)
        assert r.status_code == 404, "another key has its own allowance"
        clock.advance(1 / LOOKUPS_PER_KEY.rate)
        r = await http.get(f"{base}/{format_code(new_code())}", headers=staff)
        assert r.status_code == 404


async def test_guessing_codes_in_the_agent_search_is_limited_per_key(
    limited: Deps, clock: FakeClock
) -> None:
    deps = limited
    agent = {"Authorization": f"Bearer {await create_key(deps.pool, 'agent')}"}
    other = {"Authorization": f"Bearer {await create_key(deps.pool, 'agent')}"}
    async with AsyncTestClient(create_app(deps.settings, clock=clock)) as http:
        answers = []
        for _ in range(int(SEARCHES_PER_KEY.burst) + 5):
            r = await http.get("/api/agent/customers", params={"q": new_code()}, headers=agent)
            answers.append(r.status_code)
        assert answers == [200] * int(SEARCHES_PER_KEY.burst) + [429] * 5
        assert int(r.headers["retry-after"]) >= 1
        r = await http.get("/api/agent/customers", params={"q": new_code()}, headers=other)
        assert r.status_code == 200, "another key has its own allowance"


async def test_a_shared_limit_holds_across_two_real_workers(deps: Deps) -> None:
    """Sign-ups from one address, each on a connection of its own, spread over two
    workers: the address gets its burst once, not once per worker."""
    await stocked_launch(deps, "l1", registrations=0)
    await advance(deps, "l1", "registration_open")
    with serving(deps.settings, workers=2, env={"FAIRDROP_RATE_LIMITS": "1"}) as base:
        started = time.monotonic()

        async def sign_up(i: int) -> int:
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:  # its own connection
                r = await http.post(
                    "/api/launches/l1/registrations", json={"email": f"fan{i}@example.com"}
                )
                return r.status_code

        answers = await asyncio.gather(*(sign_up(i) for i in range(40)))
        elapsed = time.monotonic() - started
    accepted = answers.count(202)
    assert answers.count(429) == 40 - accepted, answers
    burst, rate = SIGNUP_PER_ADDRESS.burst, SIGNUP_PER_ADDRESS.rate
    assert burst <= accepted <= burst + elapsed * rate, (accepted, elapsed)
