"""The shipped `deploy/nginx.conf` turns a spike away politely: past `max_conns` requests
in hand at a container, or with no container answering, nginx answers the app's own
`unavailable` problem (503 + Retry-After) at once, never a bare 502/504.

Holds, confirms and releases (a shopper in their turn) have a budget of their own, so a
spike of polls and check-ins never turns them away; a waiter turned away is asked back
no sooner than it would poll.

The upstream here is a stand-in that holds every request until told to answer, so the
proxy's limit is reached for certain. Skipped without nginx (see test_edge_nginx.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator

import pytest

from service.queue import polls
from service.rehearse import nginx
from tests.serve import free_port

LIMIT, TURN_LIMIT = (int(n) for n in re.findall(r"max_conns=(\d+)", nginx.SHIPPED.read_text())[::3])
EXTRA = 10
POLL = "/api/launches/x/queue/status"
WAITER = range(6, int(polls.poll_cap(60_000)) + 1)
"""A waiter turned away: within the poll range a minute's admission window gives (6-15 s)."""
TURN = range(1, 3)
TURNS = ("/api/launches/x/holds", "/api/launches/x/holds/h1/confirm", "/api/launches/x/holds/h1")


@pytest.fixture
def have_nginx() -> None:
    if why := nginx.available():
        if os.environ.get("FAIRDROP_REQUIRE_NGINX") == "1":
            pytest.fail(f"FAIRDROP_REQUIRE_NGINX=1 but {why}")
        pytest.skip(why)


@pytest.fixture
def upstream_port() -> Iterator[int]:
    yield free_port()


async def _get(
    port: int, path: str = POLL, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    length = "Content-Length: 0\r\n" if method != "GET" else ""
    head = f"{method} {path} HTTP/1.1\r\nHost: t\r\n{length}Connection: close\r\n\r\n"
    writer.write(head.encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def _is_polite(answer: tuple[int, dict[str, str], bytes], wait: range = range(2, 7)) -> None:
    status, headers, body = answer
    assert status == 503, answer
    assert headers["content-type"] == "application/problem+json"
    assert int(headers["retry-after"]) in wait, headers
    problem = json.loads(body)
    assert problem["type"].endswith("/unavailable") and problem["status"] == 503


class StandIn:
    """An upstream that holds every request until `release` is set."""

    def __init__(self) -> None:
        self.held, self.release = 0, asyncio.Event()

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        self.held += 1
        await self.release.wait()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    async def until_held(self, n: int) -> None:
        for _ in range(400):  # until the stand-in holds them all (a retry interval)
            if self.held == n:
                break
            await asyncio.sleep(0.05)
        assert self.held == n


async def test_a_spike_past_max_conns_is_answered_503_with_retry_after_at_once(
    have_nginx: None, upstream_port: int
) -> None:
    stand_in = StandIn()
    server = await asyncio.start_server(stand_in, "127.0.0.1", upstream_port, backlog=4096)
    port = free_port()
    with nginx.proxy(f"127.0.0.1:{upstream_port}", port):
        await _until_listening(port)
        in_hand = [asyncio.create_task(_get(port)) for _ in range(LIMIT)]
        await stand_in.until_held(LIMIT)
        turned_away = await asyncio.wait_for(
            asyncio.gather(*(_get(port) for _ in range(EXTRA))), timeout=10
        )
        for answer in turned_away:
            _is_polite(answer, WAITER)
        assert stand_in.held == LIMIT  # none of them reached the container
        # A shopper in their turn is not turned away behind the waiters.
        turns = [
            asyncio.create_task(_get(port, path, method))
            for path, method in zip(TURNS, ("POST", "POST", "DELETE"), strict=True)
        ]
        await stand_in.until_held(LIMIT + len(TURNS))
        stand_in.release.set()
        answered = await asyncio.gather(*in_hand, *turns)
        assert {status for status, _, _ in answered} == {200}
    server.close()


async def test_turns_have_a_budget_of_their_own_and_are_asked_back_soon(
    have_nginx: None, upstream_port: int
) -> None:
    stand_in = StandIn()
    server = await asyncio.start_server(stand_in, "127.0.0.1", upstream_port, backlog=4096)
    port = free_port()
    with nginx.proxy(f"127.0.0.1:{upstream_port}", port):
        await _until_listening(port)
        in_hand = [asyncio.create_task(_get(port, TURNS[0], "POST")) for _ in range(TURN_LIMIT)]
        await stand_in.until_held(TURN_LIMIT)
        turned_away = await asyncio.wait_for(
            asyncio.gather(*(_get(port, TURNS[1], "POST") for _ in range(EXTRA))), timeout=10
        )
        for answer in turned_away:
            _is_polite(answer, TURN)
        poll = asyncio.create_task(_get(port))  # the waiters' budget is untouched
        await stand_in.until_held(TURN_LIMIT + 1)
        stand_in.release.set()
        answered = await asyncio.gather(*in_hand, poll)
        assert {status for status, _, _ in answered} == {200}
    server.close()


async def test_no_container_answering_is_503_problem_with_retry_after(
    have_nginx: None, upstream_port: int
) -> None:
    port = free_port()
    with nginx.proxy(f"127.0.0.1:{upstream_port}", port):  # nothing listens upstream
        await _until_listening(port)
        # Waiters are asked back within the poll interval the service gives them, not
        # sooner; a shopper in their turn within a second or two; anything else 2-6 s.
        _is_polite(await _get(port), WAITER)
        _is_polite(await _get(port, "/api/launches/x/queue/checkin", "POST"), WAITER)
        _is_polite(await _get(port, TURNS[0], "POST"), TURN)
        _is_polite(await _get(port, "/api/launches/x"))


async def _until_listening(port: int) -> None:
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)  # a retry interval
    raise AssertionError("nginx never listened")
