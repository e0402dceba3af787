"""`/metrics`: one scrape of any worker reports the whole deployment.

`fairdrop serve` with two workers shares one metrics folder between them; requests that
land on either are all in every scrape, the fast lane's status poll among them, beside
the launch's numbers read at scrape time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from service.auth.tokens import ShopperClaims
from service.clock import FakeClock
from service.deps import Deps
from service.infra import metrics
from service.infra.settings import Settings
from service.queue.checkin import check_in
from service.stock.holds import reserve
from service.web.app import create_app
from service.web.fastpath import FastLane
from service.web.observe import Observed
from tests.serve import selling_launch, serving, tickets_for

L = "metered"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Each sample of an exposition by (name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def _workers_counted(folder: Path) -> int:
    """How many processes have counted a request (each keeps a counter file of its own)."""
    return len(list(folder.glob("counter_*.db")))


async def test_one_scrape_reports_every_worker(deps: Deps, tmp_path: Path) -> None:
    regs = await selling_launch(deps, L, registrations=3)
    tickets = await tickets_for(deps, L, regs[:2])
    (tmp_path / "counter_1.db").write_bytes(b"an earlier run's")  # emptied at start
    env = {metrics.MULTIPROC_ENV: str(tmp_path)}
    with serving(deps.settings, workers=2, cli=True, env=env) as base:
        _scrape_two_workers(base, tmp_path, tickets)


def _scrape_two_workers(base: str, tmp_path: Path, tickets: list[str]) -> None:
    assert not (tmp_path / "counter_1.db").exists()
    sent = 0  # readiness checks: nothing else asks for them
    for _ in range(1000):
        if _workers_counted(tmp_path) == 2:
            break
        with httpx.Client() as fresh:  # a connection of its own: either worker takes it
            assert fresh.get(f"{base}/readyz").status_code == 200
        sent += 1
        time.sleep(0.01)  # a retry interval: each worker writes its counts every second
    assert _workers_counted(tmp_path) == 2, "the requests all went to one worker"
    for ticket in tickets:  # answered by the fast lane
        r = httpx.get(f"{base}/api/launches/{L}/queue/status", headers=_bearer(ticket))
        assert r.status_code == 200, r.text
    assert httpx.get(f"{base}/api/launches/{L}/nope/1").status_code == 404
    expected = {
        ("fairdrop_http_requests_total", (("route", "ready"), ("status", "200"))): sent,
        ("fairdrop_http_request_duration_seconds_count", (("route", "ready"),)): sent,
        ("fairdrop_http_requests_total", (("route", "queueStatus"), ("status", "200"))): 2,
        ("fairdrop_http_requests_total", (("route", "unmatched"), ("status", "404"))): 1,
    }
    _until_counted(base, expected)
    for _ in range(4):  # each scrape lands on either worker, and says the same
        with httpx.Client() as fresh:
            scraped = fresh.get(f"{base}/metrics")
        assert scraped.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        found = samples(scraped.text)
        assert {k: found.get(k) for k in expected} == expected
        assert value(found, "fairdrop_launch_registered", launch=L) == 3
        assert value(found, "fairdrop_launch_checked_in", launch=L) == 2
        assert value(found, "fairdrop_launch_selling", launch=L) == 1
        assert value(found, "fairdrop_launch_available", launch=L) == 10
        assert value(found, "fairdrop_backend_up", backend="redis") == 1
        assert value(found, "fairdrop_backend_up", backend="postgres") == 1
        assert value(found, "fairdrop_outbox_pending") >= 0
        assert value(found, "fairdrop_postgres_query_duration_seconds_count", outcome="ok") > 0


def _until_counted(base: str, expected: dict[Any, int]) -> None:
    """Scrape until the counts are `expected`: each worker writes its own every second
    (`metrics.FLUSH_SECONDS`); at most 10 s, a bound on the wall clock."""
    deadline = time.monotonic() + 10
    while True:
        found = samples(httpx.get(f"{base}/metrics").text)
        if {k: found.get(k) for k in expected} == expected:
            return
        assert time.monotonic() < deadline, {k: found.get(k) for k in expected}
        time.sleep(0.1)  # a retry interval


def test_a_tally_buckets_as_prometheus_client_does() -> None:
    """The tallies written in one go read as the same observations one by one."""
    from prometheus_client import CollectorRegistry, Histogram

    bounds = (0.001, 0.01, 0.1)
    seen = [0.0, 0.0005, 0.001, 0.0010001, 0.01, 0.05, 0.1, 0.2, 5.0, 0.001]
    direct, tallied = CollectorRegistry(), CollectorRegistry()
    one = Histogram("t", "t", ("k",), buckets=bounds, registry=direct)
    tally = metrics._Tally(Histogram("t", "t", ("k",), buckets=bounds, registry=tallied), bounds)
    for v in seen:
        one.labels("a").observe(v)
        tally.add(("a",), v)
    tally.flush()
    tally.flush()  # nothing twice
    by_one = {
        (s.name, tuple(s.labels.items())): s.value for f in direct.collect() for s in f.samples
    }
    by_tally = {
        (s.name, tuple(s.labels.items())): s.value for f in tallied.collect() for s in f.samples
    }
    assert {k: v for k, v in by_tally.items() if not k[0].endswith("_created")} == {
        k: v for k, v in by_one.items() if not k[0].endswith("_created")
    }


async def test_redis_calls_are_timed_by_script(deps: Deps) -> None:
    regs = await selling_launch(deps, L, registrations=1)
    key = ("fairdrop_redis_call_duration_seconds_count", (("script", "checkin"),))
    before = samples(metrics.exposition().decode()).get(key, 0.0)
    await check_in(deps, L, regs[0])
    assert samples(metrics.exposition().decode())[key] > before


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_the_fast_lanes_confirm_is_counted_as_its_route(
    settings: Settings, deps: Deps, clock: FakeClock
) -> None:
    """The confirm answered beside the framework counts under `confirmHold`, a refusal
    there too (with its status), as the routed handler's would."""
    regs = await selling_launch(deps, "fm", units=5, registrations=1, hold_seconds=60)
    token = deps.signer.sign(ShopperClaims("fm", regs[0], clock.now_ms() + 3_600_000))
    hold = await reserve(deps, "fm", regs[0], "S1", "K1")
    app = Observed(
        FastLane(create_app(msgspec.structs.replace(settings, background=False), clock)), settings
    )

    def count(status: str) -> float:
        key = ("fairdrop_http_requests_total", (("route", "confirmHold"), ("status", status)))
        return samples(metrics.exposition().decode()).get(key, 0.0)

    before = count("201")
    async with AsyncTestClient(app) as client:  # type: ignore[arg-type]
        bearer = {"Authorization": f"Bearer {token}"}
        url = f"/api/launches/fm/holds/{hold.hold_id}/confirm"
        assert (await client.post(url, headers=bearer)).status_code == 201
        refused = await client.post("/api/launches/fm/holds/nope/confirm", headers=bearer)
    assert count("201") == before + 1
    assert count(str(refused.status_code)) >= 1 and refused.status_code >= 400
