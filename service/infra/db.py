"""Postgres: the pool and the migrations runner."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import asyncpg

from service.infra import metrics
from service.infra.settings import Settings

# pg_advisory_lock key for "applying migrations" (any stable 64-bit number).
_MIGRATION_LOCK = 0x6661697264726F70  # "fairdrop"

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Pool: TypeAlias = asyncpg.Pool[asyncpg.Record]
    _PoolBase = asyncpg.Pool[asyncpg.Record]
    Conn: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
else:  # the stubs' generics do not exist at run time
    Pool = asyncpg.Pool
    Conn = asyncpg.Connection
    _PoolBase = asyncpg.Pool
_SCHEMA = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


async def _init_connection(con: Conn) -> None:
    await con.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    con.add_query_logger(_timed)  # every statement, as asyncpg times it


def _timed(query: asyncpg.connection.LoggedQuery) -> None:
    metrics.observe_postgres(query.elapsed, query.exception is not None)


_MARGIN = 1.0
"""Seconds the client waits beyond a statement's own limit before it gives up on a
server that does not answer at all (frozen, cut off), which cannot cancel anything."""


class _TimedPool(_PoolBase):
    """asyncpg's pool, whose callers wait at most `acquire_timeout` s for a connection."""

    __slots__ = ("_acquire_timeout",)

    def __init__(self, *args: Any, acquire_timeout: float | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._acquire_timeout = acquire_timeout

    def acquire(self, *, timeout: float | None = None) -> Any:
        return super().acquire(timeout=self._acquire_timeout if timeout is None else timeout)


async def create_pool(settings: Settings, *, min_size: int = 2, max_size: int = 20) -> Pool:
    """A pool whose connections see `settings.db_schema` first and decode jsonb.

    Nothing waits for Postgres unbounded: Postgres cancels a statement after
    `FAIRDROP_STATEMENT_TIMEOUT`; the client gives up a second later (a server that is
    frozen or cut off cancels nothing), and waits as long at most for a free connection
    or a new one. Each surfaces as an outage (`service.infra.outages`): 503 `unavailable`.
    """
    assert settings.database_url is not None, "resolve the embedded default first"
    limit = settings.statement_timeout_seconds or None
    pool = _TimedPool(
        settings.database_url,
        min_size=min_size,
        max_size=max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        init=_init_connection,
        reset=_default_timeout(_client_limit(limit)),
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        acquire_timeout=limit,
        timeout=limit or 60.0,  # connecting
        command_timeout=_client_limit(limit),
        server_settings={
            "search_path": settings.db_schema,
            "application_name": "fairdrop",
            "statement_timeout": _ms(settings.statement_timeout_seconds),
        },
    )
    await pool
    return cast("Pool", pool)


def _client_limit(seconds: float | None) -> float | None:
    return None if not seconds else seconds + _MARGIN


def _set_client_limit(con: Conn, seconds: float | None) -> None:
    """The limit the client puts on each of `con`'s calls that names none. asyncpg keeps
    it in the connection's configuration only (`command_timeout`)."""
    raw: Any = getattr(con, "_con", con)  # a pool's proxy, or the connection
    raw._config = raw._config._replace(command_timeout=seconds)


def _default_timeout(seconds: float | None) -> Callable[[Conn], Awaitable[None]]:
    async def reset(con: Conn) -> None:  # run as the connection goes back to the pool
        _set_client_limit(con, seconds)

    return reset


def _ms(seconds: float) -> str:
    return str(max(0, round(seconds * 1000)))


async def allow_long(con: Conn, settings: Settings) -> None:
    """Give the rest of `con`'s transaction the long statement timeout (a rebuild, a
    draw, an import) instead of the one every request's statement has; the client
    waits as long (until the connection goes back to the pool)."""
    await con.execute(
        "SELECT set_config('statement_timeout', $1, true)",
        _ms(settings.long_statement_timeout_seconds),
    )
    _set_client_limit(con, _client_limit(settings.long_statement_timeout_seconds))


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def _migrations_dir() -> Path:
    """`migrations/` beside the package (source checkout or editable install)."""
    packaged = resources.files("service").joinpath("_migrations")
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "migrations"


def load_migrations(directory: Path | None = None) -> list[Migration]:
    folder = directory or _migrations_dir()
    return [Migration(p.stem, p.read_text()) for p in sorted(folder.glob("*.sql"))]


def _each(rows: list[Any]) -> Iterator[tuple[str, str]]:
    for row in rows:
        yield row["version"], row["checksum"]


def check_schema(schema: str) -> str:
    if not _SCHEMA.match(schema):
        raise ValueError(f"bad schema name {schema!r}: letters, digits and _ only")
    return schema


async def migrate(con: Conn, schema: str = "public") -> list[str]:
    """Apply pending migrations in order, each once, each in its own transaction.

    An advisory lock makes concurrent starters wait instead of applying twice.
    Returns the versions applied by this call.
    """
    check_schema(schema)
    applied_now: list[str] = []
    await con.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await con.execute(f'SET search_path TO "{schema}"')
        await con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = dict(_each(await con.fetch("SELECT version, checksum FROM schema_migrations")))
        for migration in load_migrations():
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise RuntimeError(
                        f"migration {migration.version} was edited after it was applied"
                    )
                continue
            async with con.transaction():
                await con.execute(migration.sql)
                await con.execute(
                    "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                    migration.version,
                    migration.checksum,
                )
            applied_now.append(migration.version)
    finally:
        await con.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied_now


async def migrate_url(database_url: str, schema: str = "public") -> list[str]:
    check_schema(schema)
    con = await asyncpg.connect(database_url)
    try:
        return await migrate(con, schema)
    finally:
        await con.close()
