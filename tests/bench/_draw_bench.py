"""`draw`: seconds to draw a million checked-in registrations, Redis bytes per waiter."""

from __future__ import annotations

import argparse
import collections
import contextlib
import copy
import inspect
import os
import random
import secrets
import time
from pathlib import Path
from typing import Any

from _env import Server, fresh_space, open_deps, profiling, say, timed
from _queue_seed import advance, checkin_bulk, copy_registrations, queue_launch
from _redis_probe import key_bytes

from service.infra.settings import Settings
from service.queue import draw


class Stopwatch:
    """Wall time per call site of the pool, the Redis client and the scripts."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = collections.defaultdict(float)
        self.calls: collections.Counter[str] = collections.Counter()
        self.intervals: list[tuple[float, float]] = []

    def wrap(self, inner: Any, name: str) -> Any:
        return TimedProxy(inner, name, self)

    def add(self, label: str, began: float, ended: float) -> None:
        self.spent[label] += ended - began
        self.calls[label] += 1
        self.intervals.append((began, ended))

    def waited(self) -> float:
        """Time with at least one call awaited (calls may overlap)."""
        total, reach = 0.0, float("-inf")
        for began, ended in sorted(self.intervals):
            if ended > reach:
                total += ended - max(began, reach)
                reach = ended
        return total


class TimedProxy:
    """Passes everything through to `inner`, timing each awaited call by its label: the
    method and, for SQL, the statement's start."""

    def __init__(self, inner: Any, name: str, watch: Stopwatch) -> None:
        self._inner, self._name, self._watch = inner, name, watch

    def acquire(self) -> Any:
        return TimedAcquire(self._inner.acquire(), self._watch)

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._inner, attr)
        if not callable(value) or attr == "transaction":
            return value

        def call(*args: Any, **kw: Any) -> Any:
            what = args[0] if args and isinstance(args[0], str) else ""
            if self._name == "redis":
                what = ""
            label = f"{self._name}.{attr} {' '.join(what.split())[:60]}".strip()
            began = time.perf_counter()
            result = value(*args, **kw)
            if not inspect.isawaitable(result):
                return result

            async def wait() -> Any:
                try:
                    return await result
                finally:
                    self._watch.add(label, began, time.perf_counter())

            return wait()

        return call


class TimedAcquire:
    """`pool.acquire()` whose connection is timed too."""

    def __init__(self, inner: Any, watch: Stopwatch) -> None:
        self._inner, self._watch = inner, watch

    async def __aenter__(self) -> TimedProxy:
        return TimedProxy(await self._inner.__aenter__(), "con", self._watch)

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._inner.__aexit__(*exc)


async def bench_draw(base: Settings, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Seconds to draw `--waiters` checked-in registrations, and Redis bytes per waiter."""
    n = args.waiters or 1_000_000
    async with fresh_space(base) as settings, open_deps(settings) as deps:
        launch_id = f"bench-{secrets.token_hex(3)}"
        seed: dict[str, float] = {}
        await queue_launch(deps, launch_id, mode="prequeue-shuffle", units=100)
        await advance(deps, launch_id, "registration_open")
        ids, seed["copy_registrations_s"] = await timed(
            f"COPY {n:,} registrations", copy_registrations(deps, launch_id, n)
        )
        _, seed["close_and_commit_s"] = await timed(
            "registration_closed (commit: roster of every verified public id)",
            advance(deps, launch_id, "registration_closed"),
        )
        await advance(deps, launch_id, "checkin_open")
        random.shuffle(ids)  # arrival order
        memory_before = int((await deps.redis.info("memory"))["used_memory"])
        ranks, seed["checkin_s"] = await timed(
            f"{n:,} pre-queue check-ins", checkin_bulk(deps, launch_id, ids)
        )
        if set(ranks) != {-1}:
            raise RuntimeError("check-ins before the draw should all be in the pre-queue")
        predraw = await key_bytes(deps, launch_id)
        memory_predraw = int((await deps.redis.info("memory"))["used_memory"])
        watch = Stopwatch()
        watched = copy.copy(deps)
        watched.pool = watch.wrap(deps.pool, "pool")
        watched.redis = watch.wrap(deps.redis, "redis")
        watched.scripts = watch.wrap(deps.scripts, "script")
        began = time.perf_counter()
        with profiling_self(args.profile, 60):
            entrants = await draw.run(watched, launch_id, actor="bench")
        draw_s = time.perf_counter() - began
        say(f"draw.run: {entrants:,} entrants in {draw_s:.2f}s")
        after = await key_bytes(deps, launch_id)
        memory_after = int((await deps.redis.info("memory"))["used_memory"])
        keys = deps.keys(launch_id)
        checks = {
            "qpos_entries": await deps.redis.hlen(keys.qpos),
            "qlen": int(await deps.redis.hget(keys.qmeta, "qlen") or 0),
            "phase": await deps.redis.hget(keys.qmeta, "phase"),
            "queue_places": await deps.pool.fetchval(
                "SELECT cardinality(drawn) FROM draws WHERE launch_id = $1", launch_id
            ),
            "distinct_ranks_in_redis": len(set(await deps.redis.hvals(keys.qpos))),
        }
    if checks["qpos_entries"] != n or checks["queue_places"] != n or checks["qlen"] != n:
        raise RuntimeError(f"the draw did not place everyone: {checks}")
    waited = watch.waited()
    breakdown: dict[str, dict[str, float]] = {
        label: {"s": round(s, 3), "calls": watch.calls[label]}
        for label, s in sorted(watch.spent.items(), key=lambda kv: -kv[1])
    }
    breakdown["python, nothing awaited"] = {"s": round(draw_s - waited, 3), "calls": 1}
    # A waiter's bytes at their peak: before the draw the pre-queue list is held too.
    per_waiter = max(sum(after.values()), sum(predraw.values())) / n
    return {
        "bench": "draw",
        "ratio": round(10.0 / draw_s, 3),
        "ratio_means": "10 s ÷ draw seconds (≥ 1 meets the goal)",
        "goal": 1.0,
        "draw_s": round(draw_s, 3),
        "goal_s": 10.0,
        "redis_bytes_per_waiter": round(per_waiter, 1),
        "redis_bytes_per_waiter_means": "the larger of before and after the draw",
        "goal_bytes_per_waiter": 100,
        "met": draw_s <= 10.0 and per_waiter <= 100,
        "waiters": n,
        "entrants": entrants,
        "draw_breakdown": breakdown,
        "redis_key_bytes_after_draw": after,
        "redis_key_bytes_before_draw": predraw,
        "redis_bytes_per_waiter_before_draw": round(sum(predraw.values()) / n, 1),
        "used_memory_delta_per_waiter": {
            "before_draw": round((memory_predraw - memory_before) / n, 1),
            "after_draw": round((memory_after - memory_before) / n, 1),
            "note": "INFO used_memory is server-wide: other clients' keys count too",
        },
        "seeding": seed,
        "checks": checks,
    }


def profiling_self(out: Path | None, seconds: float) -> Any:
    """py-spy on this process (the draw runs here), if asked."""
    if out is None:
        return contextlib.nullcontext()
    return profiling(Server("", os.getpid()), out, seconds)
