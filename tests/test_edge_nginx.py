"""The deploy shape for real: Debian's nginx with the shipped `deploy/nginx.conf` (on
loopback ports, in a folder of its own) in front of two workers that trust it.

A crowd whose shoppers each come from their own address is not throttled; one address
hammering is. Each client binds a source address of its own on 127/8, so nginx sees
distinct peers and says so in `X-Forwarded-For`, as it does for shoppers on the internet.

Skipped without nginx, unless FAIRDROP_REQUIRE_NGINX=1 (CI installs it), where that fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from service.deps import Deps
from service.queue.registrations import issue_token
from service.rehearse import nginx
from service.web.ratelimit import CHECKIN_PER_ADDRESS
from tests.serve import free_port, selling_launch, serving

L = "edge"
CROWD = 150
POLLS = 8


@pytest.fixture
def front(deps: Deps) -> Iterator[str]:
    """nginx's base URL, in front of `fairdrop` with two workers and limits on."""
    if why := nginx.available():
        if os.environ.get("FAIRDROP_REQUIRE_NGINX") == "1":
            pytest.fail(f"FAIRDROP_REQUIRE_NGINX=1 but {why}")
        pytest.skip(why)
    env = {"FAIRDROP_RATE_LIMITS": "1", "FAIRDROP_TRUSTED_PROXIES": "127.0.0.1"}
    with serving(deps.settings, workers=2, env=env) as app:
        port = free_port()
        with nginx.proxy(app.removeprefix("http://"), port):
            base = f"http://127.0.0.1:{port}"
            _until_up(base)
            yield base


def _until_up(base: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "nginx never answered"
        time.sleep(0.05)  # a retry interval, not a wait for something to happen


def address(i: int) -> str:
    """Shopper i's own loopback address (never 127.0.0.1, the proxy's)."""
    return f"127.0.{1 + i // 250}.{1 + i % 250}"


@contextlib.asynccontextmanager
async def shoppers(base: str, addresses: list[str]) -> AsyncIterator[list[httpx.AsyncClient]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=base,
                    timeout=30,
                    transport=httpx.AsyncHTTPTransport(local_address=a),
                )
            )
            for a in addresses
        ]


async def test_a_crowd_behind_nginx_is_not_throttled_one_address_hammering_is(
    deps: Deps, front: str
) -> None:
    regs = await selling_launch(deps, L, registrations=CROWD, units=10)
    tokens = [(await issue_token(deps, L, r)).token for r in regs]
    url = f"/api/launches/{L}"

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async with shoppers(front, [address(i) for i in range(CROWD)]) as crowd:
        # Everyone checks in at once, each from their own address: nobody is refused.
        checked = await asyncio.gather(
            *(
                c.post(f"{url}/queue/checkin", headers=bearer(t))
                for c, t in zip(crowd, tokens, strict=True)
            )
        )
        assert Counter(r.status_code for r in checked) == {200: CROWD}
        tickets = [r.json()["ticket"] for r in checked]

        async def polls(client: httpx.AsyncClient, ticket: str) -> list[int]:
            answers = []
            for _ in range(POLLS):  # at the fastest pace a waiter is ever told to keep
                r = await client.get(f"{url}/queue/status", headers=bearer(ticket))
                answers.append(r.status_code)
                await asyncio.sleep(1.0)
            return answers

        polled = await asyncio.gather(*(polls(c, t) for c, t in zip(crowd, tickets, strict=True)))
        assert Counter(s for p in polled for s in p) == {200: CROWD * POLLS}

    async with shoppers(front, [address(CROWD)] * 8) as one:
        # The same crowd's check-ins again, all from one address: its burst, then 429.
        started = time.monotonic()
        again = await asyncio.gather(
            *(
                one[i % len(one)].post(f"{url}/queue/checkin", headers=bearer(t))
                for i, t in enumerate(tokens)
            )
        )
        took = time.monotonic() - started
        accepted = sum(r.status_code == 200 for r in again)
        refused = [r for r in again if r.status_code == 429]
        assert accepted + len(refused) == CROWD
        burst, rate = CHECKIN_PER_ADDRESS.burst, CHECKIN_PER_ADDRESS.rate
        assert burst <= accepted <= burst + took * rate, (accepted, took)
        assert all(int(r.headers["retry-after"]) >= 1 for r in refused)

        # One address polling flat out with the whole crowd's tickets is throttled too.
        async def hammer(client: httpx.AsyncClient, start: int) -> list[httpx.Response]:
            return [
                await client.get(f"{url}/queue/status", headers=bearer(tickets[k % CROWD]))
                for k in range(start, start + 375)
            ]

        hammered = [
            r for rs in await asyncio.gather(*(hammer(c, i) for i, c in enumerate(one))) for r in rs
        ]
        by_address = [r for r in hammered if r.status_code == 429 and "per address" in r.text]
        assert by_address, Counter(r.status_code for r in hammered)
