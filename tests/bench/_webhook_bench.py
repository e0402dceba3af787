"""`webhooks`: events/s delivered to a local receiver by one worker — audit-trail rows
fanned out into the delivery queue, then claimed, signed, POSTed and recorded in
Postgres, as the sweeper does — beside the same signed POSTs sent straight from
httpx, in batches of the same size, to the same receiver (the HTTP ceiling).

The receiver is a bare ASGI app under granian in a process of its own, so it does not
share the delivering worker's Python thread.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
from _env import HOST, free_port, fresh_space, open_deps, say

from service.admin import launches
from service.admin.models import LaunchCreate
from service.deps import Deps
from service.infra.settings import Settings
from service.queue.registrations import import_registrations
from service.webhooks import delivery, endpoints
from service.webhooks.fanout import fan_out
from service.webhooks.models import EndpointCreate

_RECEIVER = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})
"""
BATCH = 50
"""What `deliver_due` sends side by side (its default)."""


def _start_receiver(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    (work / "hook_receiver.py").write_text(_RECEIVER)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "granian", "--interface", "asgi", "--host", HOST, "--port",
         str(port), "--workers", "1", "--no-ws", "hook_receiver:app"],
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://{HOST}:{port}/hooks"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.post(url, content=b"{}", timeout=1.0)
            return proc, url
        except httpx.TransportError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("the receiver did not start") from None
            time.sleep(0.05)  # a retry back-off, not a wait for something to happen


async def _raw(deps: Deps, url: str, secret: str, rows: list[Any]) -> tuple[float, float]:
    """(seconds, this process's CPU seconds) to send `rows` as `deliver_due` sends each
    (checked, signed, timed: `delivery._attempt`), `BATCH` side by side, with no queue
    (no claim, no record) around them."""
    limits = httpx.Limits(max_connections=BATCH, max_keepalive_connections=BATCH)
    async with httpx.AsyncClient(timeout=5.0, limits=limits, trust_env=False) as client:
        began, cpu = time.perf_counter(), time.process_time()
        for start in range(0, len(rows), BATCH):
            chunk = [
                delivery.Claimed(0, "", r["message_id"], r["payload"], 0, url, secret, None)
                for r in rows[start : start + BATCH]
            ]
            target = await delivery._target(deps, url)
            done = await asyncio.gather(*(delivery._attempt(client, c, target) for c in chunk))
            assert all(o.error is None for o in done), done[0]
        return time.perf_counter() - began, time.process_time() - cpu


async def _round(deps: Deps, launch_id: str, n: int, first: int) -> tuple[float, float, float, int]:
    """(fan-out seconds, delivery seconds, delivery CPU seconds of this process,
    deliveries) for `n` new registrations."""
    rows = [(first + i, {"email": f"fan{first + i}@example.com"}) for i in range(n)]
    await import_registrations(deps, launch_id, rows, actor="bench", channel="admin")  # type: ignore[arg-type]
    began = time.perf_counter()
    while await fan_out(deps):
        pass
    fanned = time.perf_counter() - began
    began, cpu = time.perf_counter(), time.process_time()
    sent = 0
    while got := await delivery.deliver_due(deps, batch=BATCH, budget_seconds=3600):
        sent += got
    return fanned, time.perf_counter() - began, time.process_time() - cpu, sent


async def bench_webhooks(base: Settings, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    n = args.waiters or 5_000
    proc, url = _start_receiver(work)
    try:
        async with fresh_space(base) as settings, open_deps(settings) as deps:
            deps.settings = msgspec.structs.replace(settings, webhook_allow_private=True)
            launch_id = f"bench-{secrets.token_hex(3)}"
            await launches.create_launch(
                deps, LaunchCreate(id=launch_id, name="Bench"), actor="bench", channel="admin"
            )
            made = await endpoints.create_endpoint(
                deps, launch_id, EndpointCreate(url=url, events=["*"]), actor="b", channel="admin"
            )
            await _round(deps, launch_id, min(n, 500), 10**8)  # warm-up
            rounds = []
            for r in range(args.rounds):
                fanned, delivered, cpu, sent = await _round(deps, launch_id, n, r * n)
                assert sent == n, (sent, n)
                sample = await deps.pool.fetch(
                    "SELECT message_id, payload FROM webhook_deliveries ORDER BY id DESC LIMIT $1",
                    n,
                )
                raw, raw_cpu = await _raw(deps, url, made.secret, list(reversed(sample)))
                rounds.append(
                    {
                        "fan_out_s": fanned,
                        "deliver_s": delivered,
                        "deliver_cpu_us": cpu / n * 1e6,
                        "raw_s": raw,
                        "raw_cpu_us": raw_cpu / n * 1e6,
                    }
                )
                say(
                    f"round {r}: {n:,} events: fan-out {n / fanned:,.0f}/s, delivered"
                    f" {n / delivered:,.0f}/s ({cpu / n * 1e6:,.0f} us CPU each), raw signed"
                    f" POSTs {n / raw:,.0f}/s ({raw_cpu / n * 1e6:,.0f} us CPU each)"
                )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    deliver_rate = statistics.median(n / r["deliver_s"] for r in rounds)
    end_to_end = statistics.median(n / (r["fan_out_s"] + r["deliver_s"]) for r in rounds)
    raw_rate = statistics.median(n / r["raw_s"] for r in rounds)
    ratios = [round(r["raw_s"] / r["deliver_s"], 3) for r in rounds]
    return {
        "bench": "webhooks",
        "ratio": round(statistics.median(ratios), 3),
        "ratio_means": "deliveries/s ÷ the same signed POSTs sent straight from httpx",
        "round_ratios": ratios,
        "events_per_round": n,
        "batch": BATCH,
        "delivered_per_s": round(deliver_rate),
        "end_to_end_per_s": round(end_to_end),
        "fan_out_per_s": round(statistics.median(n / r["fan_out_s"] for r in rounds)),
        "raw_posts_per_s": round(raw_rate),
        "deliver_cpu_us": round(statistics.median(r["deliver_cpu_us"] for r in rounds)),
        "raw_cpu_us": round(statistics.median(r["raw_cpu_us"] for r in rounds)),
        "rounds": rounds,
    }
