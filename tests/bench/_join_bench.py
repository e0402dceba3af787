"""`join`: check-ins/s through POST queue/checkin ÷ a bare-EVALSHA endpoint."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import time
from pathlib import Path
from typing import Any

from _env import fresh_space, open_deps, profiling, say, serving, write_lines
from _load import Load, LoadResult, combine, cpu_ratio, paired, phase_runner
from _queue_seed import (
    SKU,
    STORE,
    advance,
    copy_registrations,
    queue_launch,
    sign_shopper_tokens,
)

from service.infra.settings import Settings

HOLD_BODY = json.dumps({"store_id": STORE, "sku_id": SKU})


async def bench_join(base: Settings, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """POST queue/checkin ÷ POST /_bench/evalsha: first check-ins, then repeated ones."""
    assert base.redis_url is not None
    n = args.waiters or 200_000
    async with fresh_space(base) as settings, open_deps(settings) as deps:
        launch_id = f"bench-{secrets.token_hex(3)}"
        began = time.perf_counter()
        await queue_launch(deps, launch_id, mode="prequeue-shuffle", units=100)
        ids = await copy_registrations(deps, launch_id, n)
        await advance(deps, launch_id, "registration_closed")
        await advance(deps, launch_id, "checkin_open")
        random.shuffle(ids)
        tokens = sign_shopper_tokens(deps, launch_id, ids)
        first_file = write_lines(work / "first.txt", tokens)
        say(
            f"seeded {launch_id}: {n:,} registrations, check-in open ({time.perf_counter() - began:.1f}s)"
        )
        path = f"/api/launches/{launch_id}/queue/checkin"
        evalsha = Load("tokens", first_file, "POST", "/_bench/evalsha", HOLD_BODY)
        hello = Load("tokens", first_file, "POST", "/_bench/hello", HOLD_BODY)
        cursor = 0
        base_runs: list[LoadResult] = []
        first_runs: list[LoadResult] = []
        with serving(settings) as server:
            run = phase_runner(args, server, base.redis_url)

            def first(seconds: float, label: str) -> LoadResult:
                nonlocal cursor
                load = Load("pairs", first_file, "POST", path, HOLD_BODY, first=cursor)
                result = run(load, seconds, label)
                cursor += result.sent
                return result

            await asyncio.to_thread(run, evalsha, args.warmup, "warm-up evalsha")
            warm = await asyncio.to_thread(first, args.warmup, "warm-up first check-ins")
            for r in range(args.rounds):
                base_runs.append(
                    await asyncio.to_thread(run, evalsha, args.seconds, f"round {r} evalsha")
                )
                with profiling(server, args.profile if r == 0 else None, args.seconds):
                    first_runs.append(
                        await asyncio.to_thread(first, args.seconds, f"round {r} first check-ins")
                    )
            again_file = write_lines(work / "again.txt", tokens[: min(cursor, n)])
            again = Load("tokens", again_file, "POST", path, HOLD_BODY)
            repeat_runs = [
                await asyncio.to_thread(run, again, args.seconds, f"round {r} repeated check-ins")
                for r in range(args.rounds)
            ]
            hello_run = await asyncio.to_thread(run, hello, min(args.seconds, 5), "hello")
        keys = deps.keys(launch_id)
        placed = await deps.redis.hlen(keys.qpos)
        prequeue = await deps.redis.llen(keys.prequeue)
    joined, repeated, baseline = combine(first_runs), combine(repeat_runs), combine(base_runs)
    ratios = paired(first_runs, base_runs)
    wrapped = sum(r.wrapped for r in [warm, *first_runs])
    if wrapped:
        say(f"WARNING: {wrapped} first check-ins reused a registration: raise --waiters")
    return {
        "bench": "join",
        **ratios,
        "ratio_means": "first check-ins (each registration once) ÷ bare EVALSHA",
        "ratio_repeat": round(repeated["rps"] / baseline["rps"], 3),
        "cpu_ratio": cpu_ratio(baseline["cpu_us_per_request"], joined["cpu_us_per_request"]),
        "cpu_ratio_repeat": cpu_ratio(
            baseline["cpu_us_per_request"], repeated["cpu_us_per_request"]
        ),
        "first_checkins": joined,
        "repeated_checkins": repeated,
        "baseline_evalsha": baseline,
        "hello": combine([hello_run]),
        "registrations": n,
        "first_checkins_sent": cursor,
        "first_checkins_wrapped": wrapped,
        "checked_in_redis": {"qpos": placed, "prequeue": prequeue},
        "mode": "prequeue-shuffle, check-in open (pre-queue: ZADD NX + HSET per first check-in)",
        "concurrency": args.connections,
        "seconds_per_phase": args.seconds,
        "rounds": args.rounds,
        "client": first_runs[0].client,
        "profiled": args.profile is not None,
    }
