"""Helpers for tests that drive a whole launch: run the real app, seed a launch, check counts.

`serving(settings)` starts `service.web.asgi:app` under granian in a subprocess on a
free loopback port, with the test's schema, Redis prefix and secret, and waits for
`/healthz` (retries, no fixed sleep). Tokens signed with the test's `deps.signer`
verify in the server, because both use `settings.secret`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from typing import IO, Any

import httpx

from service.admin.allocations import set_allocation
from service.admin.launches import add_item, create_launch, transition
from service.admin.models import ItemCreate, LaunchCreate, Transition
from service.clock import FakeClock
from service.deps import Deps
from service.infra import processes
from service.infra.redis import create_redis
from service.infra.settings import Settings
from service.queue.checkin import check_in
from service.queue.registrations import import_registrations, list_registrations
from service.stock.counts import postgres_counts, redis_counts

ACTOR = {"actor": "test", "channel": "admin"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def server_env(settings: Settings) -> dict[str, str]:
    """The environment a fairdrop process needs to share this test's schema and keys."""
    assert settings.database_url is not None and settings.redis_url is not None
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "FAIRDROP_DB_SCHEMA": settings.db_schema,
        "FAIRDROP_REDIS_PREFIX": settings.redis_prefix,
        "FAIRDROP_SECRET": settings.secret,
        "FAIRDROP_BACKGROUND": "0",
        "FAIRDROP_MAX_BODY": str(settings.max_body_bytes),
        "FAIRDROP_CONFIRM_DEADLINE": str(settings.confirm_deadline_seconds),
        "FAIRDROP_TOKEN_TTL": str(settings.shopper_token_ttl_seconds),
    }


@contextlib.contextmanager
def serving(
    settings: Settings,
    *,
    startup_timeout: float = 30.0,
    env: dict[str, str] | None = None,
    workers: int = 1,
    cli: bool = False,
    output: IO[str] | None = None,
) -> Iterator[str]:
    """Run the real app (granian, `workers` processes); yields its base URL, stops it on
    exit. `env` adds to (or overrides) the variables `server_env` gives it. With `cli`
    it runs as `fairdrop serve` does (migrations, then granian, a metrics folder). Its
    output goes to `output` when given (a file the test reads), else to a scratch file."""
    port = free_port()
    where = ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    if cli:
        command = [sys.executable, "-m", "service", "serve", *where]
    else:
        command = [sys.executable, "-m", "granian", "--interface", "asgi", *where, "--no-ws"]
        command.append("service.web.asgi:app")
    with contextlib.nullcontext(output) if output else tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(
            command,
            # Where it listens, as `fairdrop serve` tells its workers: links start there.
            env=server_env(settings)
            | {"FAIRDROP_HOST": "127.0.0.1", "FAIRDROP_PORT": str(port)}
            | {"FAIRDROP_WORKERS": str(workers)}
            | (env or {}),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(proc, base, startup_timeout, log)
            yield base
        finally:
            processes.stop(proc)


def _wait_healthy(proc: subprocess.Popen[bytes], base: str, timeout: float, log: IO[str]) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}):\n{_read(log)}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not become healthy in {timeout}s:\n{_read(log)}")
        time.sleep(delay)  # a retry back-off, not a wait for something to happen
        delay = min(delay * 2, 0.5)


def _read(log: IO[str]) -> str:
    log.seek(0)
    return log.read()


async def stocked_launch(
    deps: Deps,
    launch_id: str = "drop",
    *,
    stores: tuple[str, ...] = ("S1",),
    skus: tuple[str, ...] = ("K1",),
    units: int = 10,
    registrations: int = 10,
    **launch: Any,
) -> list[int]:
    """A draft launch (`launch` sets its LaunchCreate fields) with `units` per (store,
    sku) and `registrations` imported; returns the registration ids."""
    await create_launch(deps, LaunchCreate(id=launch_id, name="Drop", **launch), **ACTOR)
    for store in stores:
        await add_item(deps, launch_id, "stores", ItemCreate(id=store, name=store), **ACTOR)
    for sku in skus:
        await add_item(deps, launch_id, "skus", ItemCreate(id=sku, name=sku), **ACTOR)
    for store in stores:
        for sku in skus:
            await set_allocation(deps, launch_id, store, sku, units, **ACTOR)
    rows = [(i + 1, {"email": f"shopper{i}@example.com"}) for i in range(registrations)]
    report = await import_registrations(deps, launch_id, rows, **ACTOR)  # type: ignore[arg-type]
    assert report.created == registrations
    return [r.id for r in await list_registrations(deps, launch_id, limit=registrations)]


async def advance(deps: Deps, launch_id: str, *states: str) -> None:
    """Move the launch through `states` by hand, in order."""
    for state in states:
        await transition(deps, launch_id, Transition(action="advance", to=state), **ACTOR)  # type: ignore[arg-type]


async def selling_launch(
    deps: Deps, launch_id: str = "drop", *, limit: int = 1, hold_seconds: int = 300, **stock: Any
) -> list[int]:
    """A selling launch (`stock` as `stocked_launch` takes it: stores, skus, units,
    registrations); returns the registration ids.

    First come, first served (no draw), admitting as fast as stock allows.
    """
    regs = await stocked_launch(
        deps,
        launch_id,
        hold_seconds=hold_seconds,
        per_customer_limit=limit,
        fairness_mode="fifo",
        admit_rate=100_000,
        **stock,
    )
    await advance(deps, launch_id, "selling")
    return regs


async def tickets_for(deps: Deps, launch_id: str, registrations: list[int]) -> list[str]:
    """Check each registration in, in order (ranks 0, 1, ...); returns their queue tickets."""
    return [(await check_in(deps, launch_id, r)).ticket for r in registrations]


async def assert_consistent(deps: Deps, launch_id: str) -> dict[str, tuple[int, int, int, int]]:
    """Invariant 1 in Redis, and Redis agreeing with Postgres (allocated, confirmed).

    Returns `"store:sku"` → (allocated, available, held, confirmed) as Redis counts them.
    """
    pg = await postgres_counts(deps, launch_id)
    out = {}
    for c in await redis_counts(deps, launch_id):
        key = f"{c.store_id}:{c.sku_id}"
        assert min(c.available, c.held, c.confirmed) >= 0, c
        assert c.available + c.held + c.confirmed == c.allocated, c
        assert pg.get(key, (0, 0)) == (c.allocated, c.confirmed), (key, pg.get(key), c)
        out[key] = (c.allocated, c.available, c.held, c.confirmed)
    return out


async def until_admitted(deps: Deps, launch_id: str, n: int) -> None:
    """Retry until a server has admitted exactly `n` ranks (open windows); at most 30 s
    (a bound on the wall clock: 200 tries of 50 ms took longer than 10 s under load)."""
    window = deps.keys(launch_id).window
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while loop.time() < deadline:
        if await deps.redis.zcard(window) >= n:
            assert await deps.redis.zcard(window) == n
            return
        await asyncio.sleep(0.05)  # a retry interval, not a wait for something to happen
    raise AssertionError(f"the server never admitted {n} shoppers")


@contextlib.asynccontextmanager
async def clients(deps: Deps, n: int, clock: FakeClock | None = None) -> AsyncIterator[list[Deps]]:
    """`n` Deps sharing the Postgres pool, each with a Redis client (pool) of its own.

    Each pool holds up to 32 connections: 2,000 calls at once over 10 clients of the
    service's 200 opened 2,000 sockets together, and on a loaded machine one of them
    missed redis-py's 5 s connect timeout. 320 still race each other in Redis."""
    assert deps.settings.redis_url is not None
    made = [
        Deps(
            settings=deps.settings,
            pool=deps.pool,
            clock=clock or deps.clock,
            redis=create_redis(deps.settings.redis_url, max_connections=32),
        )
        for _ in range(n)
    ]
    try:
        yield made
    finally:
        for d in made:
            await d.redis.aclose()
