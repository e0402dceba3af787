"""Status polls: `poll` (status ÷ hello, Redis round trips counted) and `poll-scale`
(status with a million waiters ÷ with a thousand)."""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import secrets
import time
import urllib.request
from pathlib import Path
from typing import Any

from _env import Server, fresh_space, open_deps, profiling, say, serving, timed, write_lines
from _load import Load, LoadResult, combine, cpu_ratio, paired, phase_runner
from _queue_seed import advance, checkin_bulk, copy_registrations, queue_launch, sign_tickets
from _redis_probe import Monitor, calls_between, key_bytes, redis_calls, redis_clients_of

from service.infra.settings import Settings
from service.queue import checkin


def _states(server: Server, path: str, tickets: list[str], n: int = 40) -> dict[str, int]:
    """The states a sample of tickets reads (what the load measured was answering)."""
    seen: collections.Counter[str] = collections.Counter()
    for ticket in random.sample(tickets, min(n, len(tickets))):
        request = urllib.request.Request(
            server.base_url + path, headers={"Authorization": f"Bearer {ticket}"}
        )
        with urllib.request.urlopen(request, timeout=5) as reply:
            seen[json.loads(reply.read())["status"]["state"]] += 1
    return dict(seen)


async def bench_poll(base: Settings, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """GET queue/status with real tickets ÷ GET /_bench/hello; Redis calls counted."""
    assert base.redis_url is not None
    waiters = args.waiters or 10_000
    async with fresh_space(base) as settings, open_deps(settings) as deps:
        launch_id = f"bench-{secrets.token_hex(3)}"
        began = time.perf_counter()
        await queue_launch(deps, launch_id, mode="fifo", units=waiters, admit_rate=args.admit_rate)
        ids = await copy_registrations(deps, launch_id, waiters)
        await advance(deps, launch_id, "checkin_open")
        gate = asyncio.Semaphore(64)

        async def check_in(reg: int) -> str:
            async with gate:
                return (await checkin.check_in(deps, launch_id, reg)).ticket

        tickets = list(await asyncio.gather(*(check_in(r) for r in ids)))
        await advance(deps, launch_id, "selling")
        file = write_lines(work / "tickets.txt", tickets)
        say(f"seeded {launch_id}: {waiters} checked in (fifo) ({time.perf_counter() - began:.1f}s)")
        path = f"/api/launches/{launch_id}/queue/status"
        status = Load("tokens", file, "GET", path)
        hello = Load("tokens", file, "GET", "/_bench/hello")
        status_runs: list[LoadResult] = []
        hello_runs: list[LoadResult] = []
        sent: list[dict[str, int]] = []
        server_wide: list[dict[str, int]] = []
        with serving(settings) as server:
            run = phase_runner(args, server, base.redis_url)
            await asyncio.to_thread(run, hello, args.warmup, "warm-up hello")
            await asyncio.to_thread(run, status, args.warmup, "warm-up status")
            # Round trips the server makes: MONITOR, counting only its own connections.
            monitor = Monitor(base.redis_url)
            try:
                clients = redis_clients_of(server.pid, base.redis_url)
                idle_began = time.perf_counter()
                await asyncio.sleep(args.idle)
                clients |= redis_clients_of(server.pid, base.redis_url)
                idle = monitor.sent_by(clients)
                idle_s = time.perf_counter() - idle_began
                for n in range(args.rounds):
                    hello_runs.append(
                        await asyncio.to_thread(run, hello, args.seconds, f"round {n} hello")
                    )
                    clients |= redis_clients_of(server.pid, base.redis_url)
                    sent_before = monitor.sent_by(clients)
                    stats_before = await redis_calls(deps)
                    with profiling(server, args.profile if n == 0 else None, args.seconds):
                        status_runs.append(
                            await asyncio.to_thread(run, status, args.seconds, f"round {n} status")
                        )
                    server_wide.append(calls_between(stats_before, await redis_calls(deps)))
                    clients |= redis_clients_of(server.pid, base.redis_url)
                    sent.append(calls_between(sent_before, monitor.sent_by(clients)))
            finally:
                monitor.close()
            states = await asyncio.to_thread(_states, server, path, tickets)
    polled, baseline = combine(status_runs), combine(hello_runs)
    ratios = paired(status_runs, hello_runs, goal=0.6)
    requests = polled["requests"]
    poll_s = sum(r.duration_s for r in status_runs)
    by_server = collections.Counter[str]()
    for d in sent:
        by_server.update(d)
    everyone = collections.Counter[str]()
    for d in server_wide:
        everyone.update(d)
    everyone.pop("info", None)  # the bench's own INFO commandstats
    idle_rate = sum(idle.values()) / idle_s
    server_trips = sum(by_server.values())
    return {
        "bench": "poll",
        **ratios,
        "ratio_all_statuses": round(polled["rps"] / baseline["rps"], 3),
        "cpu_ratio": cpu_ratio(baseline["cpu_us_per_request"], polled["cpu_us_per_request"]),
        "status": polled,
        "baseline_hello": baseline,
        "redis_round_trips": {
            "by_server_during_status": server_trips,
            "per_status_request": round(server_trips / max(1, requests), 6),
            "per_second": round(server_trips / poll_s, 1),
            "by_command": dict(by_server),
            "idle_per_second": round(idle_rate, 1),
            "idle_by_command": idle,
            "how": "MONITOR lines from the server process's own Redis connections",
        },
        "redis_commandstats": {
            "calls_during_status": sum(everyone.values()),
            "per_status_request": round(sum(everyone.values()) / max(1, requests), 4),
            "by_command": dict(everyone.most_common(10)),
            "note": "INFO commandstats is server-wide: every client of this Redis counts,"
            " and commands run inside scripts count too",
        },
        "sampled_states": states,
        "waiters": waiters,
        "admit_rate": args.admit_rate,
        "concurrency": args.connections,
        "seconds_per_phase": args.seconds,
        "rounds": args.rounds,
        "client": status_runs[0].client,
        "profiled": args.profile is not None,
    }


async def bench_poll_scale(base: Settings, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Status requests/s with `--large` waiters ÷ with `--small`, two launches, one server."""
    assert base.redis_url is not None
    sizes = {"small": args.small, "large": args.large}
    async with fresh_space(base) as settings, open_deps(settings) as deps:
        tag = secrets.token_hex(3)
        launch = {k: f"bench-{tag}-{k}" for k in sizes}
        seeding: dict[str, Any] = {}
        files: dict[str, Path] = {}
        samples: dict[str, list[str]] = {}
        for k, n in sizes.items():
            lid = launch[k]
            await queue_launch(deps, lid, mode="fifo", units=10_000, admit_rate=args.admit_rate)
            await advance(deps, lid, "checkin_open")
            regs = range(1, n + 1)  # no Postgres rows needed: the ticket carries the rank
            ranks, spent = await timed(f"{lid}: {n:,} check-ins", checkin_bulk(deps, lid, regs))
            if sorted(ranks) != list(range(n)):
                raise RuntimeError(f"{lid}: check-in ranks are not 0..{n - 1}")
            places = list(zip(regs, ranks, strict=True))
            if args.tickets and args.tickets < n:
                places = places[:: n // args.tickets][: args.tickets]
            began = time.perf_counter()
            tickets = sign_tickets(deps, lid, places)
            signed = time.perf_counter() - began
            files[k] = write_lines(work / f"{k}.txt", tickets)
            samples[k] = random.sample(tickets, min(40, len(tickets)))
            await advance(deps, lid, "selling")
            seeding[k] = {
                "waiters": n,
                "checkin_s": spent,
                "checkins_per_s": round(n / spent),
                "tickets": len(tickets),
                "sign_s": round(signed, 3),
                "redis_bytes": await key_bytes(deps, lid),
            }
            say(f"{lid}: {len(tickets):,} tickets signed in {signed:.1f}s")
        loads = {
            k: Load("tokens", files[k], "GET", f"/api/launches/{launch[k]}/queue/status")
            for k in sizes
        }
        runs: dict[str, list[LoadResult]] = {k: [] for k in sizes}
        with serving(settings) as server:
            run = phase_runner(args, server, base.redis_url)
            for k in sizes:
                await asyncio.to_thread(run, loads[k], args.warmup, f"warm-up {k}")
            for n in range(args.rounds):
                order = list(sizes) if n % 2 == 0 else list(reversed(sizes))
                for k in order:
                    label = f"round {n} {k} ({sizes[k]:,} waiters)"
                    runs[k].append(await asyncio.to_thread(run, loads[k], args.seconds, label))
            states = {
                k: await asyncio.to_thread(
                    _states, server, f"/api/launches/{launch[k]}/queue/status", samples[k]
                )
                for k in sizes
            }
    small, large = combine(runs["small"]), combine(runs["large"])
    ratios = paired(runs["large"], runs["small"], goal=0.9)
    return {
        "bench": "poll-scale",
        **ratios,
        "cpu_ratio": cpu_ratio(small["cpu_us_per_request"], large["cpu_us_per_request"]),
        # The server's own CPU per poll, small ÷ large: flat cost shows here even when
        # the loader (a table of a million distinct tickets costs wrk more than one of a
        # thousand) takes a share of the same two cores.
        "server_cpu_ratio": round(
            small["cpu_us_per_request"]["server"] / large["cpu_us_per_request"]["server"], 3
        ),
        "large": large,
        "small": small,
        "seeding": seeding,
        "sampled_states": states,
        "admit_rate": args.admit_rate,
        "concurrency": args.connections,
        "seconds_per_phase": args.seconds,
        "rounds": args.rounds,
        "client": runs["large"][0].client,
    }
