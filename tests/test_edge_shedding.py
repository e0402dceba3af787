"""The shipped `deploy/nginx.conf` turns a spike away politely: past `max_conns` requests
in hand at a container, or with no container answering, nginx answers the app's own
`unavailable` problem (503 + Retry-After) at once, never a bare 502/504.

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

from service.rehearse import nginx
from tests.serve import free_port

LIMIT = int(re.findall(r"max_conns=(\d+)", nginx.SHIPPED.read_text())[0])
EXTRA = 10


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
    port: int, path: str = "/api/launches/x/queue/status"
) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def _is_polite(answer: tuple[int, dict[str, str], bytes]) -> None:
    status, headers, body = answer
    assert status == 503, answer
    assert headers["content-type"] == "application/problem+json"
    assert 2 <= int(headers["retry-after"]) <= 6
    problem = json.loads(body)
    assert problem["type"].endswith("/unavailable") and problem["status"] == 503


async def test_a_spike_past_max_conns_is_answered_503_with_retry_after_at_once(
    have_nginx: None, upstream_port: int
) -> None:
    held, release = 0, asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal held
        await reader.readuntil(b"\r\n\r\n")
        held += 1
        await release.wait()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", upstream_port, backlog=4096)
    port = free_port()
    with nginx.proxy(f"127.0.0.1:{upstream_port}", port):
        await _until_listening(port)
        in_hand = [asyncio.create_task(_get(port)) for _ in range(LIMIT)]
        for _ in range(400):  # until the stand-in holds them all (a retry interval)
            if held == LIMIT:
                break
            await asyncio.sleep(0.05)
        assert held == LIMIT
        turned_away = await asyncio.wait_for(
            asyncio.gather(*(_get(port) for _ in range(EXTRA))), timeout=10
        )
        for answer in turned_away:
            _is_polite(answer)
        assert held == LIMIT  # none of them reached the container
        release.set()
        answered = await asyncio.gather(*in_hand)
        assert {status for status, _, _ in answered} == {200}
    server.close()


async def test_no_container_answering_is_503_problem_with_retry_after(
    have_nginx: None, upstream_port: int
) -> None:
    port = free_port()
    with nginx.proxy(f"127.0.0.1:{upstream_port}", port):  # nothing listens upstream
        await _until_listening(port)
        _is_polite(await _get(port))
        status, headers, _ = await _get(port, "/api/launches/x/queue/checkin")
        assert status == 503 and "retry-after" in headers


async def _until_listening(port: int) -> None:
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)  # a retry interval
    raise AssertionError("nginx never listened")
