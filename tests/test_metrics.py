"""`/metrics`: one scrape of any worker reports the whole deployment.

`fairdrop serve` with two workers shares one metrics folder between them; requests that
land on either are all in every scrape, the fast lane's status poll among them, beside
the launch's numbers read at scrape time.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from service.deps import Deps
from service.infra import metrics
from service.queue.checkin import check_in
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


_HEALTH, _OK = "fairdrop_http_requests_total", {"route": "health", "status": "200"}


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
    # The start-up's health checks, however many: every scrape has them too.
    sent = value(samples(httpx.get(f"{base}/metrics").text), _HEALTH, **_OK)
    for _ in range(500):
        if _workers_counted(tmp_path) == 2:
            break
        with httpx.Client() as fresh:  # a connection of its own: either worker takes it
            assert fresh.get(f"{base}/healthz").status_code == 200
        sent += 1
    assert _workers_counted(tmp_path) == 2, "the requests all went to one worker"
    for ticket in tickets:  # answered by the fast lane
        r = httpx.get(f"{base}/api/launches/{L}/queue/status", headers=_bearer(ticket))
        assert r.status_code == 200, r.text
    assert httpx.get(f"{base}/api/launches/{L}/nope/1").status_code == 404
    for _ in range(4):  # each scrape lands on either worker, and says the same
        with httpx.Client() as fresh:
            found = samples(fresh.get(f"{base}/metrics").text)
        assert value(found, "fairdrop_http_requests_total", route="health", status="200") == sent
        assert value(found, "fairdrop_http_request_duration_seconds_count", route="health") == sent
        assert value(found, "fairdrop_http_requests_total", route="queueStatus", status="200") == 2
        assert value(found, "fairdrop_http_requests_total", route="unmatched", status="404") == 1
        assert value(found, "fairdrop_launch_registered", launch=L) == 3
        assert value(found, "fairdrop_launch_checked_in", launch=L) == 2
        assert value(found, "fairdrop_launch_selling", launch=L) == 1
        assert value(found, "fairdrop_launch_available", launch=L) == 10
        assert value(found, "fairdrop_backend_up", backend="redis") == 1
        assert value(found, "fairdrop_backend_up", backend="postgres") == 1
        assert value(found, "fairdrop_outbox_pending") >= 0
        assert value(found, "fairdrop_postgres_query_duration_seconds_count", outcome="ok") > 0


async def test_redis_calls_are_timed_by_script(deps: Deps) -> None:
    regs = await selling_launch(deps, L, registrations=1)
    key = ("fairdrop_redis_call_duration_seconds_count", (("script", "checkin"),))
    before = samples(metrics.exposition()[0].decode()).get(key, 0.0)
    await check_in(deps, L, regs[0])
    assert samples(metrics.exposition()[0].decode())[key] > before


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
