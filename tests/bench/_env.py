"""The bench's surroundings: backing servers, a fresh schema and key prefix, the server.

Nothing here measures; `run.py` measures and `_load.py` drives the load.
"""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import asyncpg
import msgspec
import psutil  # type: ignore[import-untyped]  # via the embedded servers' wheels
import redis

from service.clock import SystemClock
from service.deps import Deps
from service.infra import db
from service.infra.redis import create_redis
from service.infra.settings import Settings, from_env

ROOT = Path(__file__).resolve().parents[2]
"""The checkout: benchmark servers run from it, so their workers import `tests.bench`."""

HOST = "127.0.0.1"
T = TypeVar("T")


def say(message: str) -> None:
    """Progress goes to stderr; stdout's last line is the result."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def timed(label: str, work: Awaitable[T]) -> tuple[T, float]:
    """The result of `work` and the seconds it took (said on stderr)."""
    began = time.perf_counter()
    result = await work
    spent = time.perf_counter() - began
    say(f"{label}: {spent:.2f}s")
    return result, round(spent, 3)


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


@contextlib.contextmanager
def backing_services() -> Iterator[Settings]:
    """DATABASE_URL / REDIS_URL when set, else the embedded servers, with a run secret."""
    settings = msgspec.structs.replace(
        from_env(), secret=secrets.token_urlsafe(32), background=False, rate_limits=False
    )
    if settings.database_url and settings.redis_url:
        yield settings
        return
    from service.infra.embedded import services

    say("DATABASE_URL/REDIS_URL unset: starting the embedded PostgreSQL and Valkey")
    with services(settings) as resolved:
        yield resolved


@contextlib.asynccontextmanager
async def fresh_space(base: Settings) -> AsyncIterator[Settings]:
    """A schema and Redis key prefix of this run's own, dropped and deleted at the end."""
    assert base.database_url is not None and base.redis_url is not None
    tag = secrets.token_hex(4)
    settings = msgspec.structs.replace(base, db_schema=f"bench_{tag}", redis_prefix=f"bench{tag}:")
    await db.migrate_url(base.database_url, settings.db_schema)
    say(f"schema {settings.db_schema}, key prefix {settings.redis_prefix}")
    try:
        yield settings
    finally:
        con = await asyncpg.connect(base.database_url)
        try:
            await con.execute(f'DROP SCHEMA "{settings.db_schema}" CASCADE')
        finally:
            await con.close()
        redis = create_redis(base.redis_url)
        try:
            doomed = [k async for k in redis.scan_iter(f"{settings.redis_prefix}*", count=1000)]
            for start in range(0, len(doomed), 1000):
                await redis.delete(*doomed[start : start + 1000])
        finally:
            await redis.aclose()
        say(f"dropped {settings.db_schema} and {len(doomed)} Redis keys")


@contextlib.asynccontextmanager
async def open_deps(settings: Settings, pool_size: int = 20) -> AsyncIterator[Deps]:
    """The bench process's own pool and client, for seeding."""
    assert settings.redis_url is not None
    pool = await db.create_pool(settings, min_size=1, max_size=pool_size)
    redis = create_redis(settings.redis_url)
    try:
        yield Deps(settings=settings, pool=pool, redis=redis, clock=SystemClock())
    finally:
        await redis.aclose()
        await pool.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Server:
    base_url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU of the server and its workers so far."""
        main = psutil.Process(self.pid)
        total = 0.0
        for proc in [main, *main.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                total += times.user + times.system
        return total


def redis_cpu_seconds(url: str) -> float:
    """Redis's own CPU so far (shared servers: others' load counts too)."""
    client = redis.Redis.from_url(url)
    try:
        info = client.info("cpu")
    finally:
        client.close()
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


class PostgresCpu:
    """CPU of the PostgreSQL processes on this machine, per process, so backends that
    exit during a phase (others' connections) do not make the difference negative."""

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> dict[int, float]:
        seen: dict[int, float] = {}
        for proc in psutil.process_iter(["name"]):
            if proc.info["name"] in ("postgres", "postmaster"):
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    times = proc.cpu_times()
                    seen[proc.pid] = times.user + times.system
        return seen

    def seconds(self) -> float:
        """CPU spent since this object was made (by processes alive at the end)."""
        now = self._sample()
        return sum(cpu - self.start.get(pid, 0.0) for pid, cpu in now.items())


def busy_seconds() -> float:
    """CPU seconds all processes on the machine have spent so far (to spot noise)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def children_cpu_seconds() -> float:
    """CPU of this process's exited children (each wrk run, once waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def serving(settings: Settings, *, timeout: float = 30.0) -> Iterator[Server]:
    """`fairdrop serve` (granian, no background loop) with the bench routes: one worker
    unless BENCH_WORKERS says otherwise."""
    assert settings.database_url is not None and settings.redis_url is not None
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "FAIRDROP_SECRET": settings.secret,
        "FAIRDROP_DB_SCHEMA": settings.db_schema,
        "FAIRDROP_REDIS_PREFIX": settings.redis_prefix,
        "FAIRDROP_BACKGROUND": "0",
        "FAIRDROP_WORKERS": os.environ.get("BENCH_WORKERS", "1"),
        # Per-address limits would turn one load generator's flood into 429s.
        "FAIRDROP_RATE_LIMITS": "1" if settings.rate_limits else "0",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.bench._serve"],
        env={**env, "FAIRDROP_HOST": HOST, "FAIRDROP_PORT": str(port)},
        cwd=ROOT,  # the workers import tests.bench._asgi
        stdout=sys.stderr,
        start_new_session=True,  # its own process group: granian's worker goes with it
    )
    server = Server(f"http://{HOST}:{port}", process.pid)
    try:
        _wait_healthy(server.base_url + "/healthz", process, timeout)
        say(f"server pid {process.pid} healthy at {server.base_url}")
        yield server
        _settle(server)
    finally:
        _stop(process)


def _settle(server: Server, timeout: float = 10.0) -> None:
    """Wait until requests the load generator left in flight have finished (the server
    stops using CPU), so stopping it does not cut them off halfway."""
    deadline = time.monotonic() + timeout
    before = server.cpu_seconds()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = server.cpu_seconds()
        if now - before < 0.005:
            return
        before = now


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pause = 0.02
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before /healthz")
        try:
            with urllib.request.urlopen(url, timeout=1) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout}s")
        time.sleep(pause)
        pause = min(pause * 2, 0.25)


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


@contextlib.contextmanager
def profiling(server: Server, out: Path | None, seconds: float) -> Iterator[None]:
    """py-spy on the server (and its granian worker) while the block runs, if asked."""
    spy = shutil.which("py-spy")
    if out is None or spy is None:
        yield
        return
    cmd = [spy, "record", "--pid", str(server.pid), "--subprocesses", "--nonblocking"]
    cmd += ["--rate", "250", "--duration", str(round(seconds)), "--format", "raw", "-o", str(out)]
    spying = subprocess.Popen(cmd, stdout=sys.stderr, stderr=sys.stderr)
    try:
        yield
    finally:
        spying.wait(timeout=seconds + 30)
        say(f"py-spy profile (collapsed stacks) in {out}")
