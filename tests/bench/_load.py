"""Driving HTTP load from a second process: wrk (with wrk.lua), else a small asyncio client."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from _env import (
    PostgresCpu,
    Server,
    busy_seconds,
    children_cpu_seconds,
    redis_cpu_seconds,
    say,
)

WRK_LUA = Path(__file__).with_name("wrk.lua")
CPU_PARTS = ("server", "redis", "postgres", "loader")


@dataclass
class Load:
    """What to send: `mode` "tokens" (random token each request) or "pairs" (next line:
    "token hold_id", or just "token" to use each token once, in order)."""

    mode: str
    file: Path
    method: str
    path: str
    body: str = ""
    first: int = 0


@dataclass
class LoadResult:
    requests: int
    duration_s: float
    sent: int
    wrapped: int
    socket_errors: int
    statuses: dict[str, int]
    latency_ms: dict[str, float] = field(default_factory=dict)
    client: str = "wrk"
    cpu_s: dict[str, float] = field(default_factory=dict)
    """CPU seconds used during the phase: server, redis, postgres, load generator."""
    other_cores: float = 0.0
    """Cores kept busy by everything else on the machine meanwhile (noise)."""

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s

    def count(self, prefix: str) -> int:
        return sum(n for status, n in self.statuses.items() if status.startswith(prefix))

    def cpu_per_request(self) -> dict[str, float]:
        return {k: round(v / max(1, self.requests) * 1e6, 1) for k, v in self.cpu_s.items()}


def cpu_ratio(baseline: dict[str, float], measured: dict[str, float]) -> float:
    """CPU per baseline operation ÷ CPU per measured operation, all parts counted: what
    the throughput ratio tends to when the machine's cores are the limit, and steadier
    than it when other processes share the machine."""
    return round(sum(baseline.values()) / sum(measured.values()), 3)


def combine(results: list[LoadResult]) -> dict[str, Any]:
    """Rounds of one phase as one figure: all requests over all measured time."""
    statuses: dict[str, int] = {}
    for r in results:
        for k, v in r.statuses.items():
            statuses[k] = statuses.get(k, 0) + v
    requests = sum(r.requests for r in results)
    seconds = sum(r.duration_s for r in results)
    ok = sum(r.count("2") for r in results)
    return {
        "rps": round(requests / seconds, 1),
        "ok_rps": round(ok / seconds, 1),
        "requests": requests,
        "duration_s": round(seconds, 3),
        "statuses": statuses,
        "latency_ms": [r.latency_ms for r in results],
        "socket_errors": sum(r.socket_errors for r in results),
        "rounds": [round(r.rps, 1) for r in results],
        "other_cores_busy": [r.other_cores for r in results],
        "cpu_us_per_request": {
            k: round(sum(r.cpu_s.get(k, 0.0) for r in results) / max(1, requests) * 1e6, 1)
            for k in CPU_PARTS
        },
    }


def paired(
    measured: list[LoadResult], baseline: list[LoadResult], goal: float | None = None
) -> dict[str, Any]:
    """The ratio a paired bench states, with what it is made of.

    Each round's ratio is its measured 2xx/s over the baseline's req/s in the same
    round. A round runs the two phases back to back, so each pair saw about the same
    machine; on a shared one the speed of everything drifts by a fifth within a minute,
    and one slow burst can land on either phase. So `ratio` is the median of the rounds'
    ratios (`round_ratios`), with the pooled figure (`ratio_pooled`) beside it; with a
    `goal`, whether the ratio meets it (`met`, unrounded)."""
    rounds = [
        round(m.count("2") / m.duration_s / b.rps, 3)
        for m, b in zip(measured, baseline, strict=True)
    ]
    ratio = statistics.median(rounds)
    pooled = combine(measured)["ok_rps"] / combine(baseline)["rps"]
    out: dict[str, Any] = {
        "ratio": round(ratio, 3),
        "round_ratios": rounds,
        "ratio_pooled": round(pooled, 3),
    }
    if goal is not None:
        out |= {"goal": goal, "met": ratio >= goal}
    return out


def ensure_wrk() -> str | None:
    """wrk's path, installing Debian's package when it is missing and apt works."""
    found = shutil.which("wrk")
    if found or not shutil.which("apt-get"):
        return found
    say("wrk missing: apt-get install -y wrk")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        if subprocess.run(cmd, stdout=sys.stderr, stderr=sys.stderr, check=False).returncode:
            say("apt-get failed: falling back to the asyncio client")
            return None
    return shutil.which("wrk")


def drive(
    wrk: str | None, server: Server, redis_url: str, load: Load, *, seconds: float, connections: int
) -> LoadResult:
    """One phase of load, with the CPU the server, Redis and the load generator spent on it."""
    loader_cpu = children_cpu_seconds if wrk else time.process_time  # fallback: in-process
    machine = busy_seconds()
    postgres = PostgresCpu()
    before = (server.cpu_seconds(), redis_cpu_seconds(redis_url), 0.0, loader_cpu())
    if wrk is None:
        result = asyncio.run(_python_load(server.base_url, load, seconds, connections))
    else:
        result = _wrk(wrk, server.base_url, load, seconds, connections)
    after = (server.cpu_seconds(), redis_cpu_seconds(redis_url), postgres.seconds(), loader_cpu())
    used = [round(b - a, 3) for a, b in zip(before, after, strict=True)]
    result.cpu_s = dict(zip(CPU_PARTS, used, strict=True))
    busy = busy_seconds() - machine
    result.other_cores = round(max(0.0, busy - sum(used)) / result.duration_s, 2)
    if result.other_cores > 0.25:
        say(f"note: other processes kept {result.other_cores} cores busy during this phase")
    return result


def _wrk(wrk: str, base_url: str, load: Load, seconds: float, connections: int) -> LoadResult:
    threads = 1  # two cores: the server, Redis and Postgres need the rest
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_LUA),
        base_url,
        "--",
        load.mode,
        str(load.file),
        load.method,
        load.path,
        load.body,
        str(load.first),
        str(threads),
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    marker = next((ln for ln in run.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if run.returncode or marker is None:
        raise RuntimeError(f"wrk failed ({run.returncode}): {run.stderr}\n{run.stdout}")
    raw = json.loads(marker.removeprefix("WRK_JSON "))
    lat = raw["latency_us"]
    return LoadResult(
        requests=raw["requests"],
        duration_s=raw["duration_us"] / 1e6,
        sent=raw["sent"],
        wrapped=raw["wrapped"],
        socket_errors=raw["socket_errors"],
        statuses=raw["statuses"],
        latency_ms={k: round(v / 1000, 3) for k, v in lat.items()},
    )


# -- fallback: HTTP/1.1 keep-alive connections on asyncio ----------------------------------

_STATUS = re.compile(rb"^HTTP/1\.[01] (\d{3})")
_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)
_KIND = re.compile(rb"problems/([\w-]+)")


async def _python_load(base_url: str, load: Load, seconds: float, connections: int) -> LoadResult:
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    lines = load.file.read_text().splitlines()
    cursor = load.first
    wrapped = 0

    def next_request() -> bytes:
        nonlocal cursor, wrapped
        if load.mode == "tokens":
            token, path = random.choice(lines), load.path
        else:
            wrapped += cursor >= len(lines)
            token, _, hold = lines[cursor % len(lines)].partition(" ")
            path, cursor = load.path.replace("{hold}", hold) if hold else load.path, cursor + 1
        body = load.body.encode()
        return (
            f"{load.method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    statuses: dict[str, int] = {}
    latencies: list[float] = []
    sent = errors = 0
    began = time.perf_counter()
    deadline = began + seconds

    async def connection() -> None:
        nonlocal sent, errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                writer.write(next_request())
                sent += 1
                head = await reader.readuntil(b"\r\n\r\n")
                length = _LENGTH.search(head)
                body = await reader.readexactly(int(length.group(1)) if length else 0)
                latencies.append(time.perf_counter() - start)
                status = _STATUS.match(head)
                key = status.group(1).decode() if status else "???"
                kind = _KIND.search(body) if key >= "300" else None
                key += f" {kind.group(1).decode()}" if kind else ""
                statuses[key] = statuses.get(key, 0) + 1
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - began
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 3)

    return LoadResult(
        requests=len(latencies),
        duration_s=elapsed,
        sent=sent,
        wrapped=wrapped,
        socket_errors=errors,
        statuses=statuses,
        latency_ms={"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99)} if latencies else {},
        client="python-asyncio",
    )


Runner = Callable[[Load, float, str], LoadResult]


def phase_runner(args: argparse.Namespace, server: Server, redis_url: str) -> Runner:
    """run(load, seconds, label): one phase, reported on stderr as it ends."""
    wrk = ensure_wrk() if args.client == "wrk" else None

    def run(load: Load, seconds: float, label: str) -> LoadResult:
        result = drive(wrk, server, redis_url, load, seconds=seconds, connections=args.connections)
        cpu = result.cpu_per_request()
        say(f"{label}: {result.rps:,.0f} req/s, statuses {result.statuses}, CPU us/req {cpu}")
        return result

    return run
