"""Request ids and JSON log lines.

Every answer carries `X-Request-Id` (a trusted proxy's own, if plain, else a new one),
problem details repeat it, and with `FAIRDROP_LOG_FORMAT=json` the server writes one
JSON line per request (the client as `service/web/forwarded.py` resolves it) and per
run of a background job.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
from litestar.testing import AsyncTestClient

from service.deps import Deps
from service.infra.settings import Settings
from service.web.app import create_app
from service.web.fastpath import FastLane
from service.web.observe import Observed
from tests.serve import selling_launch, serving, tickets_for

L = "logged"
_NEW_ID = re.compile(r"[0-9a-f]{32}")


def _lines(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def _until_logged(path: Path, **fields: object) -> dict[str, Any]:
    """The first JSON line with `fields`, retried for at most 20 s (the jobs' own
    pace; a bound on the wall clock, not a wait for a fixed time)."""
    deadline = time.monotonic() + 20
    while True:
        for line in _lines(path):
            if all(line.get(k) == v for k, v in fields.items()):
                return line
        assert time.monotonic() < deadline, f"no line with {fields}: {_lines(path)[-5:]}"
        time.sleep(0.1)  # a retry interval


async def test_json_lines_and_request_ids_behind_a_trusted_proxy(
    deps: Deps, tmp_path: Path
) -> None:
    regs = await selling_launch(deps, L, registrations=1)
    (ticket,) = await tickets_for(deps, L, regs)
    env = {
        "FAIRDROP_LOG_FORMAT": "json",
        "FAIRDROP_TRUSTED_PROXIES": "127.0.0.1",
        "FAIRDROP_BACKGROUND": "1",
    }
    log = tmp_path / "server.log"
    with log.open("w+") as out, serving(deps.settings, env=env, output=out) as base:
        _check_server(base, log, ticket)


def _check_server(base: str, log: Path, ticket: str) -> None:
    proxied = {"X-Request-Id": "edge-42:a.b", "X-Forwarded-For": "203.0.113.9"}
    r = httpx.get(f"{base}/healthz", headers=proxied)
    assert r.headers["x-request-id"] == "edge-42:a.b"
    line = _until_logged(log, logger="fairdrop.request", request_id="edge-42:a.b")
    assert line["method"] == "GET" and line["route"] == "health" and line["status"] == 200
    assert line["client"] == "203.0.113.9" and line["duration_ms"] >= 0
    # Too long to repeat: replaced.
    r = httpx.get(f"{base}/healthz", headers={"X-Request-Id": "x" * 200})
    assert _NEW_ID.fullmatch(r.headers["x-request-id"])
    # A problem says its request id, as the header does.
    r = httpx.get(f"{base}/api/launches/{L}/nope")
    assert r.status_code == 404
    assert r.json()["request_id"] == r.headers["x-request-id"]
    # The fast lane's answers carry one too, and are logged under their route.
    r = httpx.get(
        f"{base}/api/launches/{L}/queue/status", headers={"Authorization": f"Bearer {ticket}"}
    )
    assert r.status_code == 200 and _NEW_ID.fullmatch(r.headers["x-request-id"])
    line = _until_logged(log, request_id=r.headers["x-request-id"])
    assert line["route"] == "queueStatus" and line["client"] == "127.0.0.1"
    job = _until_logged(log, logger="fairdrop.job", job="holds")
    assert job["outcome"] == "ok" and job["duration_ms"] >= 0


async def test_an_untrusted_peer_cannot_choose_its_request_id(settings: Settings) -> None:
    settings = msgspec.structs.replace(settings, background=False, trusted_proxies="127.0.0.1")
    app = Observed(FastLane(create_app(settings)), settings)
    async with AsyncTestClient(app) as client:  # type: ignore[arg-type]
        r = await client.get("/healthz", headers={"X-Request-Id": "chosen"})
        assert _NEW_ID.fullmatch(r.headers["x-request-id"])
        r = await client.get("/api/admin/launches")
        assert r.status_code == 401
        assert r.json()["request_id"] == r.headers["x-request-id"]
