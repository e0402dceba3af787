"""Throughput benchmarks, each stated as a ratio to a baseline measured in the same run.

    python tests/bench/run.py reserve   # POST /holds ÷ one bare EVALSHA endpoint (goal ≥ 0.9)
                                        # (median of paired rounds: see _load.paired)
    python tests/bench/run.py confirm   # POST /holds/{id}/confirm ÷ raw asyncpg inserts (≥ 0.5)
    python tests/bench/run.py poll      # GET queue/status ÷ GET /_bench/hello (≥ 0.6)
    python tests/bench/run.py poll-scale  # status with 1,000,000 waiters ÷ with 1,000 (≥ 0.9)
    python tests/bench/run.py draw      # draw 1,000,000 check-ins: ≤ 10 s, ≤ 100 Redis bytes each
    python tests/bench/run.py join      # POST queue/checkin ÷ POST /_bench/evalsha
    python tests/bench/run.py reserve-ir  # reserve's ratio in CPU instructions (callgrind)
    python tests/bench/run.py rebuild   # rebuild 600k units ÷ their Postgres read; Redis bytes
    python tests/bench/run.py webhooks  # webhook deliveries/s ÷ the same signed POSTs from httpx
    python tests/bench/run.py export    # 10⁶-row registrations.csv: RSS rise ÷ a 10⁵-row one's
    python tests/bench/run.py all --markdown  # every bench, then one Markdown table of them
    python tests/bench/run.py table FILE      # that table from saved result lines

Uses DATABASE_URL / REDIS_URL when set, else the embedded servers. Each run makes its
own schema and key prefix and drops them at the end; it serves the app with
`fairdrop serve` with the baseline routes (`tests/bench/_serve.py`; 1 worker,
FAIRDROP_BACKGROUND=0) and loads it with wrk from another process. Progress goes to
stderr; the last stdout line is a JSON object with the ratio and the raw figures. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
from _draw_bench import bench_draw
from _env import (
    PostgresCpu,
    backing_services,
    busy_seconds,
    fresh_space,
    open_deps,
    profiling,
    say,
    serving,
)
from _export_bench import bench_export
from _instructions import bench_reserve_instructions
from _join_bench import bench_join
from _load import Load, LoadResult, combine, cpu_ratio, drive, ensure_wrk, paired
from _markdown import read_results, table
from _poll_bench import bench_poll, bench_poll_scale
from _rebuild_bench import bench_rebuild
from _seed import (
    SKU,
    STORE,
    admit_all,
    make_holds,
    seed_launch,
    sign_tokens,
    write_pairs,
    write_tokens,
)
from _webhook_bench import bench_webhooks

from service.deps import Deps
from service.infra.settings import Settings
from service.stock.counts import redis_counts

HOLD_BODY = json.dumps({"store_id": STORE, "sku_id": SKU})


@contextlib.asynccontextmanager
async def _seeded(
    base: Settings, args: argparse.Namespace, *, hold_seconds: int
) -> AsyncIterator[tuple[Settings, Deps, str, list[int]]]:
    """A fresh schema and key prefix with a launch of `args.units` units and
    `args.shoppers` registrations, selling; dropped when the block ends."""
    async with fresh_space(base) as settings, open_deps(settings) as deps:
        launch_id = f"bench-{secrets.token_hex(3)}"
        began = time.perf_counter()
        ids = await seed_launch(
            deps,
            launch_id,
            units=args.units,
            shoppers=args.shoppers,
            limit=args.limit,
            hold_seconds=hold_seconds,
        )
        say(
            f"seeded {launch_id}: {args.units} units, {len(ids)} shoppers, "
            f"limit {args.limit} ({time.perf_counter() - began:.1f}s)"
        )
        yield settings, deps, launch_id, ids


# -- reserve ---------------------------------------------------------------------------------


async def bench_reserve(base: Settings, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    wrk = ensure_wrk() if args.client == "wrk" else None
    assert base.redis_url is not None
    redis_url = base.redis_url
    async with _seeded(base, args, hold_seconds=3600) as (settings, deps, launch_id, ids):
        began = time.perf_counter()
        tokens = work / "tokens.txt"
        # A hold needs an admitted queue ticket: everyone checks in and is admitted.
        write_tokens(tokens, await admit_all(deps, launch_id, ids))
        say(f"admitted {len(ids)} shoppers ({time.perf_counter() - began:.1f}s)")
        hold = Load("tokens", tokens, "POST", f"/api/launches/{launch_id}/holds", HOLD_BODY)
        # The same request bytes to the baseline route, which ignores body and token.
        evalsha = Load("tokens", tokens, "POST", "/_bench/evalsha", HOLD_BODY)
        hello = Load("tokens", tokens, "POST", "/_bench/hello", HOLD_BODY)
        c = args.connections

        def run(load: Load, seconds: float, label: str) -> LoadResult:
            result = drive(wrk, server, redis_url, load, seconds=seconds, connections=c)
            cpu = result.cpu_per_request()
            say(f"{label}: {result.rps:,.0f} req/s, statuses {result.statuses}, CPU us/req {cpu}")
            return result

        with serving(settings) as server:
            await asyncio.to_thread(run, evalsha, args.warmup, "warm-up evalsha")
            await asyncio.to_thread(run, hold, args.warmup, "warm-up reserve")
            base_runs: list[LoadResult] = []
            hold_runs: list[LoadResult] = []
            for n in range(args.rounds):
                with profiling(
                    server, _baseline_path(args.profile) if n == 0 else None, args.seconds
                ):
                    base_runs.append(
                        await asyncio.to_thread(run, evalsha, args.seconds, f"round {n} evalsha")
                    )
                with profiling(server, args.profile if n == 0 else None, args.seconds):
                    hold_runs.append(
                        await asyncio.to_thread(run, hold, args.seconds, f"round {n} reserve")
                    )
            hello_run = await asyncio.to_thread(run, hello, min(args.seconds, 5), "hello")
        counts = await _counts(deps, launch_id)
    refused = [r.statuses for r in hold_runs if set(r.statuses) != {"201"}]
    if refused:
        # A launch run dry answers cheap refusals, and the rounds that met them would
        # state reserve slower than it is: the figure would not mean what it says.
        raise SystemExit(f"reserve rounds were refused {refused}: seed more (--units, --shoppers)")
    reserve, baseline = combine(hold_runs), combine(base_runs)
    # Only holds granted (2xx) count: a refusal is cheap and must not flatter the ratio.
    ratios = paired(hold_runs, base_runs, goal=0.9)
    return {
        "bench": "reserve",
        **ratios,
        "ratio_all_statuses": round(reserve["rps"] / baseline["rps"], 3),
        "cpu_ratio": cpu_ratio(baseline["cpu_us_per_request"], reserve["cpu_us_per_request"]),
        "reserve": reserve,
        "baseline_evalsha": baseline,
        "hello": combine([hello_run]),
        "concurrency": c,
        "seconds_per_phase": args.seconds,
        "warmup_s": args.warmup,
        "rounds": args.rounds,
        "client": hold_runs[0].client,
        "seed": {"units": args.units, "shoppers": args.shoppers, "limit": args.limit},
        "redis_after": counts,
        "profiled": args.profile is not None,
    }


def _baseline_path(profile: Path | None) -> Path | None:
    """Where the baseline's profile goes beside the measured route's, to compare the two."""
    return None if profile is None else profile.with_name(profile.name + ".baseline")


async def _counts(deps: Deps, launch_id: str) -> list[dict[str, int]]:
    return [
        {"available": c.available, "held": c.held, "confirmed": c.confirmed}
        for c in await redis_counts(deps, launch_id)
    ]


# -- confirm ---------------------------------------------------------------------------------


async def raw_inserts(settings: Settings, *, connections: int, seconds: float) -> dict[str, Any]:
    """N connections, each looping `BEGIN; INSERT one row; COMMIT` for `seconds`."""
    assert settings.database_url is not None
    cons = [
        await asyncpg.connect(
            settings.database_url, server_settings={"search_path": settings.db_schema}
        )
        for _ in range(connections)
    ]
    await cons[0].execute(
        "CREATE TABLE bench_t (id bigserial PRIMARY KEY, k text NOT NULL, v bigint NOT NULL,"
        " at timestamptz NOT NULL DEFAULT now())"
    )
    latencies: list[float] = []

    async def loop(con: asyncpg.Connection[asyncpg.Record], until: float, keep: bool) -> int:
        done = 0
        while time.perf_counter() < until:
            start = time.perf_counter()
            async with con.transaction():
                await con.execute("INSERT INTO bench_t (k, v) VALUES ($1, $2)", "bench", done)
            done += 1
            if keep:
                latencies.append(time.perf_counter() - start)
        return done

    try:
        until = time.perf_counter() + 2  # warm-up
        await asyncio.gather(*(loop(con, until, False) for con in cons))
        postgres, cpu, machine = PostgresCpu(), time.process_time(), busy_seconds()
        began = time.perf_counter()
        counts = await asyncio.gather(*(loop(con, began + seconds, True) for con in cons))
        elapsed = time.perf_counter() - began
        used = (postgres.seconds(), time.process_time() - cpu)
        other = max(0.0, busy_seconds() - machine - sum(used)) / elapsed
    finally:
        for con in cons:
            await con.close()
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 3)

    return {
        "tps": round(sum(counts) / elapsed, 1),
        "transactions": sum(counts),
        "duration_s": round(elapsed, 3),
        "connections": connections,
        "latency_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99)},
        "cpu_us_per_tx": {
            "postgres": round(used[0] / sum(counts) * 1e6, 1),
            "client": round(used[1] / sum(counts) * 1e6, 1),
        },
        "other_cores_busy": round(other, 2),
    }


async def bench_confirm(base: Settings, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    wrk = ensure_wrk() if args.client == "wrk" else None
    assert base.redis_url is not None
    redis_url = base.redis_url
    async with _seeded(base, args, hold_seconds=86400) as (settings, deps, launch_id, ids):
        say(f"raw asyncpg inserts: {args.db_connections} connections, {args.seconds}s")
        raw = await raw_inserts(settings, connections=args.db_connections, seconds=args.seconds)
        say(f"raw asyncpg: {raw['tps']:,.0f} transactions/s")
        tokens = sign_tokens(deps, launch_id, ids)
        pairs_file = work / "pairs.txt"
        pairs: list[tuple[int, str]] = []

        async def add_holds(n: int) -> None:
            """Append `n` holds (never more than the units left) to the pairs file."""
            n = min(n, args.units - len(pairs))
            if n <= 0:
                return
            began = time.perf_counter()
            pairs.extend(await make_holds(deps, launch_id, ids, n))
            write_pairs(pairs_file, pairs, tokens)
            say(f"made {n} holds in {time.perf_counter() - began:.1f}s ({len(pairs)} in all)")

        # Enough warm-up holds even if confirms kept pace with raw inserts; the measured
        # phase gets what the warm-up's rate needs, with margin, so no request reuses one.
        await add_holds(args.holds or int(raw["tps"] * args.warmup * 1.2) + 500)
        path = f"/api/launches/{launch_id}/holds/{{hold}}/confirm"
        c = args.connections

        def run(first: int, seconds: float, label: str) -> LoadResult:
            load = Load("pairs", pairs_file, "POST", path, first=first)
            result = drive(wrk, server, redis_url, load, seconds=seconds, connections=c)
            cpu = result.cpu_per_request()
            say(f"{label}: {result.rps:,.0f} req/s, statuses {result.statuses}, CPU us/req {cpu}")
            return result

        with serving(settings) as server:
            warm = await asyncio.to_thread(run, 0, args.warmup, "warm-up confirm")
            first = min(warm.sent, len(pairs))
            await add_holds(int(warm.rps * args.seconds * 1.6) + 1000 - (len(pairs) - first))
            with profiling(server, args.profile, args.seconds):
                measured = await asyncio.to_thread(run, first, args.seconds, "confirm")
        stored = await deps.pool.fetchval(
            "SELECT count(*) FROM reservations WHERE launch_id = $1", launch_id
        )
        counts = await _counts(deps, launch_id)
    confirm = combine([measured])
    ratio = confirm["ok_rps"] / raw["tps"]
    if measured.wrapped:
        say(f"WARNING: {measured.wrapped} requests reused a hold: the 2xx rate is inflated")
    return {
        "bench": "confirm",
        "ratio": round(ratio, 3),
        "cpu_ratio": cpu_ratio(raw["cpu_us_per_tx"], confirm["cpu_us_per_request"]),
        "goal": 0.5,
        "met": ratio >= 0.5,
        "confirm": confirm,
        "raw_asyncpg_insert": raw,
        "concurrency": c,
        "seconds_per_phase": args.seconds,
        "warmup_s": args.warmup,
        "holds_made": len(pairs),
        "holds_used": first + measured.sent,
        "wrapped": measured.wrapped,
        "reservations_in_postgres": stored,
        "confirms_answered_2xx": warm.count("2") + measured.count("2"),
        "client": measured.client,
        "seed": {"units": args.units, "shoppers": args.shoppers, "limit": args.limit},
        "redis_after": counts,
        "profiled": args.profile is not None,
    }


BENCHES = {
    "reserve": bench_reserve,
    "confirm": bench_confirm,
    "poll": bench_poll,
    "poll-scale": bench_poll_scale,
    "draw": bench_draw,
    "join": bench_join,
    "reserve-ir": bench_reserve_instructions,
    "rebuild": bench_rebuild,
    "webhooks": bench_webhooks,
    "export": bench_export,
}


def _with_defaults(args: argparse.Namespace, bench: str) -> argparse.Namespace:
    """`args` with the figures left unset filled in as `bench` needs them."""
    given = dict(vars(args))
    if given["seconds"] is None:
        # A confirm phase eats the holds made before it and has no paired rounds.
        given["seconds"] = 10.0 if bench == "confirm" else 5.0
    if given["units"] is None:
        # reserve: ~8,000 holds/s for 6 rounds of 5 s and the warm-up must not run dry.
        given["units"] = 600_000 if bench in ("reserve", "rebuild") else 100_000
    if given["shoppers"] is None:
        given["shoppers"] = 40_000 if bench == "reserve" else 20_000
    if given["admit_rate"] is None:
        given["admit_rate"] = 1.0 if bench == "poll-scale" else 5.0
    return argparse.Namespace(**given)


def _run(bench: str, args: argparse.Namespace) -> dict[str, Any]:
    began = time.perf_counter()
    with backing_services() as base, tempfile.TemporaryDirectory(prefix="fd-bench-") as tmp:
        result = asyncio.run(BENCHES[bench](base, _with_defaults(args, bench), Path(tmp)))
    result["wall_s"] = round(time.perf_counter() - began, 1)
    say(f"{bench}: ratio {result['ratio']} (goal {result.get('goal')}) in {result['wall_s']}s")
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bench", choices=[*BENCHES, "all", "table"])
    parser.add_argument("file", nargs="?", type=Path, help="table: saved result lines")
    parser.add_argument(
        "--markdown", action="store_true", help="end with the results as a Markdown table"
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="each measured phase (5; confirm: 10)"
    )
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=6, help="baseline/measured pairs")
    parser.add_argument("--connections", type=int, default=64, help="HTTP connections")
    parser.add_argument("--db-connections", type=int, default=20, help="raw asyncpg (confirm)")
    parser.add_argument("--units", type=int, default=None)
    parser.add_argument("--shoppers", type=int, default=None)
    parser.add_argument("--limit", type=int, default=16)
    parser.add_argument("--holds", type=int, default=None, help="confirm: warm-up holds")
    parser.add_argument(
        "--waiters",
        type=int,
        default=None,
        help="poll: checked in (10,000); draw: drawn (1,000,000); join: registrations"
        " (200,000); webhooks: events a round (5,000); export: rows (1,000,000)",
    )
    parser.add_argument("--small", type=int, default=1_000, help="poll-scale: the small queue")
    parser.add_argument("--large", type=int, default=1_000_000, help="poll-scale: the large one")
    parser.add_argument(
        "--tickets", type=int, default=None, help="poll-scale: tickets for wrk (default: all)"
    )
    parser.add_argument(
        "--admit-rate", type=float, default=None, help="poll (5/s), poll-scale (1/s)"
    )
    parser.add_argument("--idle", type=float, default=5.0, help="poll: Redis calls at rest (s)")
    parser.add_argument(
        "--requests", type=int, default=400, help="reserve-ir: counted requests a route"
    )
    parser.add_argument("--profile", type=Path, default=None, help="py-spy raw output file")
    parser.add_argument(
        "--client", choices=["wrk", "python"], default="wrk", help="python: the asyncio fallback"
    )
    args = parser.parse_args()
    if args.bench == "table":
        if args.file is None:
            parser.error("table needs the FILE of saved result lines")
        print(table(read_results(args.file)))
        return
    names = list(BENCHES) if args.bench == "all" else [args.bench]
    results = [_run(name, args) for name in names]
    if args.markdown:
        print(table(results), flush=True)


if __name__ == "__main__":
    main()
