"""The fairdrop a rehearsal starts when it is given no `--target`: `fairdrop serve`
with `--workers` processes (optionally behind the shipped nginx, optionally on a
three-node Redis Cluster), on `DATABASE_URL` / `REDIS_URL` or the embedded servers,
in a Postgres schema and Redis key prefix of its own that are dropped afterwards.
It also reads the invariants straight from Postgres, which a target does not allow.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import msgspec
import psutil  # type: ignore[import-untyped]  # no type information
import redis

from service.auth.apikeys import create_key
from service.infra import db
from service.infra.embedded import services
from service.infra.local_cluster import local_cluster
from service.infra.settings import Settings, from_env
from service.rehearse import nginx
from service.rehearse.options import Options, Refused

STARTUP_S = 60.0
LIVE = "('confirmed', 'collected')"


@dataclass
class Local:
    """What a rehearsal can see of servers it started itself."""

    settings: Settings
    server_pid: int
    redis_nodes: list[str] = field(default_factory=list)
    """Redis URLs whose INFO the monitor reads (every node of a cluster)."""
    redis_owned: bool = False
    """The Redis is this rehearsal's alone (embedded or its cluster): its command
    time is the launch's, not other tenants' too."""

    def server_processes(self) -> list[psutil.Process]:
        """`fairdrop serve` and its workers (granian's children)."""
        try:
            main = psutil.Process(self.server_pid)
            return [main, *main.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []


@dataclass
class Target:
    base_url: str
    """Where the crowd goes (nginx when in front)."""
    admin_key: str
    local: Local | None = None
    log: Path | None = None
    """The servers' output (tracebacks of any 500 are there)."""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes] | None, seconds: float) -> None:
    """Retry GET {url}/healthz until it answers 200 (a health check, not a sleep)."""
    deadline, delay = time.monotonic() + seconds, 0.05
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}) before it was healthy")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/healthz", timeout=2.0).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} was not healthy within {seconds:.0f} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


@contextlib.contextmanager
def _backing(options: Options) -> Iterator[tuple[Settings, list[str], bool]]:
    """Settings with both URLs (embedded servers for those unset; a cluster if asked),
    the Redis node URLs, and whether that Redis is the run's alone."""
    base = from_env()
    owned = options.redis_cluster or base.redis_url is None
    with contextlib.ExitStack() as stack:
        nodes: list[str] = []
        if options.redis_cluster:
            ports = stack.enter_context(local_cluster(3))
            nodes = [f"redis://127.0.0.1:{p}/0" for p in ports]
            base = msgspec.structs.replace(base, redis_url=nodes[0], redis_cluster=True)
        if base.embedded:
            print("rehearse: starting the embedded PostgreSQL and Valkey…", file=sys.stderr)
        settings = stack.enter_context(services(base))
        assert settings.redis_url is not None
        yield settings, nodes or [settings.redis_url], owned


async def _prepare(settings: Settings) -> str:
    """Migrate the run's schema; an admin key in it."""
    assert settings.database_url is not None
    await db.migrate_url(settings.database_url, settings.db_schema)
    pool = await db.create_pool(settings, min_size=1, max_size=1)
    try:
        return await create_key(pool, "admin", label="rehearsal")
    finally:
        await pool.close()


async def _drop(settings: Settings) -> None:
    assert settings.database_url is not None
    con = await asyncpg.connect(settings.database_url)
    try:
        await con.execute(f'DROP SCHEMA IF EXISTS "{db.check_schema(settings.db_schema)}" CASCADE')
    finally:
        await con.close()


def _forget(settings: Settings) -> None:
    """Drop the run's schema and its Redis keys (only those under its own prefix)."""
    asyncio.run(_drop(settings))
    if settings.redis_cluster or settings.redis_url is None:
        return  # the cluster is the run's own and goes with it
    client = redis.Redis.from_url(settings.redis_url)
    try:
        batch = list(client.scan_iter(match=f"{settings.redis_prefix}*", count=1000))
        for i in range(0, len(batch), 1000):
            client.delete(*batch[i : i + 1000])
    finally:
        client.close()


def server_env(settings: Settings, public_url: str, options: Options) -> dict[str, str]:
    assert settings.database_url is not None and settings.redis_url is not None
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "FAIRDROP_REDIS_CLUSTER": "1" if settings.redis_cluster else "0",
        "FAIRDROP_DB_SCHEMA": settings.db_schema,
        "FAIRDROP_REDIS_PREFIX": settings.redis_prefix,
        "FAIRDROP_SECRET": settings.secret,
        "FAIRDROP_WORKERS": str(options.workers),
        "FAIRDROP_PUBLIC_URL": public_url,
        "FAIRDROP_NOTIFY": "0",  # e-mails stay in the outbox
        # A rehearsal proves the limits spare honest shoppers: on unless asked.
        "FAIRDROP_RATE_LIMITS": "1" if options.rate_limits else "0",
        "FAIRDROP_TRUSTED_PROXIES": "127.0.0.1",  # the crowd's X-Forwarded-For is believed
        "FAIRDROP_BACKGROUND": "1",
    }


@contextlib.contextmanager
def _serving(settings: Settings, options: Options, log: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    public = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "service", "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", str(options.workers)]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            env=server_env(settings, public, options),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers form a group of its own, stopped together
        )
    try:
        wait_healthy(url, proc, STARTUP_S)
        yield url, proc.pid
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the group started_new_session made
        proc.wait()


@contextlib.contextmanager
def local_stack(options: Options, out: Path) -> Iterator[Target]:
    """Start fairdrop for this rehearsal; tear it all down on exit."""
    if options.through_nginx and (why := nginx.available()):
        raise Refused(f"--through-nginx: {why}")
    tag = secrets.token_hex(4)
    log = out / "server.log"
    log.write_bytes(b"")
    with _backing(options) as (backing, nodes, owned):
        settings = msgspec.structs.replace(
            backing,
            db_schema=f"rehearse_{tag}",
            redis_prefix=f"rh{tag}:",
            secret=secrets.token_urlsafe(32),
        )
        key = asyncio.run(_prepare(settings))
        try:
            with _serving(settings, options, log) as (url, pid), contextlib.ExitStack() as front:
                base = url
                if options.through_nginx:
                    port = free_port()
                    front.enter_context(nginx.proxy(url.removeprefix("http://"), port))
                    base = f"http://127.0.0.1:{port}"
                    wait_healthy(base, None, STARTUP_S)
                yield Target(base, key, Local(settings, pid, nodes, owned), log)
        finally:
            _forget(settings)


async def _invariants(settings: Settings, launch_id: str, limit: int) -> tuple[int, int]:
    assert settings.database_url is not None
    con = await asyncpg.connect(
        settings.database_url, server_settings={"search_path": settings.db_schema}
    )
    try:
        oversold = await con.fetchval(
            "SELECT coalesce(sum(greatest(0, coalesce(r.live, 0) - coalesce(u.allocated, 0))), 0)"
            " FROM (SELECT store_id, sku_id, count(*) AS allocated FROM units"
            "  WHERE launch_id = $1 GROUP BY 1, 2) u"
            f" FULL JOIN (SELECT store_id, sku_id, count(*) AS live FROM reservations"
            f"  WHERE launch_id = $1 AND status IN {LIVE} GROUP BY 1, 2) r"
            " USING (store_id, sku_id)",
            launch_id,
        )
        double = await con.fetchval(
            "SELECT coalesce(sum(n - $2), 0) FROM (SELECT registration_id, count(*) AS n"
            f" FROM reservations WHERE launch_id = $1 AND status IN {LIVE}"
            " GROUP BY 1) x WHERE n > $2",
            launch_id,
            limit,
        )
    finally:
        await con.close()
    return int(oversold), int(double)


def postgres_invariants(local: Local, launch_id: str, limit: int) -> tuple[int, int]:
    """(units reserved above allocation, reservations above a customer's limit)."""
    return asyncio.run(_invariants(local.settings, launch_id, limit))
