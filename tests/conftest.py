"""Fixtures: every test gets a fresh Postgres schema and a fresh Redis key prefix.

Real servers only: `DATABASE_URL` / `REDIS_URL` when set, else the embedded ones
(started once per test session).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator

import asyncpg
import hypothesis
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from service.auth.apikeys import create_key
from service.clock import FakeClock
from service.deps import Deps
from service.infra import db
from service.infra.redis import create_redis
from service.infra.settings import Settings, from_env
from service.web.app import create_app
from tests.mail import HOST, Inbox, smtp_server

# No test is timed: on a loaded machine hypothesis's 200 ms deadline per example failed
# a property that had nothing to do with speed. Benchmarks measure speed (tests/bench).
hypothesis.settings.register_profile("fairdrop", deadline=None)
hypothesis.settings.load_profile("fairdrop")


@pytest.fixture(scope="session")
def base_settings() -> Iterator[Settings]:
    settings = from_env()
    settings = msgspec.structs.replace(
        settings, secret="test-secret", background=False, rate_limits=False
    )
    if settings.database_url and settings.redis_url:
        yield settings
        return
    from service.infra.embedded import services

    with services(settings) as resolved:
        yield resolved


@pytest.fixture
async def settings(base_settings: Settings) -> AsyncIterator[Settings]:
    """Settings with a schema and key prefix of this test's own."""
    tag = secrets.token_hex(4)
    schema = f"t_{tag}"
    assert base_settings.database_url is not None
    applied = await db.migrate_url(base_settings.database_url, schema)
    assert applied, "a fresh schema gets every migration"
    yield msgspec.structs.replace(base_settings, db_schema=schema, redis_prefix=f"t{tag}:")
    con = await asyncpg.connect(base_settings.database_url)
    try:
        await con.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await con.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def deps(settings: Settings, clock: FakeClock) -> AsyncIterator[Deps]:
    pool = await db.create_pool(
        settings, min_size=1, max_size=int(os.environ.get("FD_TEST_POOL", "30"))
    )
    assert settings.redis_url is not None
    redis = create_redis(settings.redis_url)
    d = Deps(settings=settings, pool=pool, redis=redis, clock=clock)
    yield d
    keys = [k async for k in redis.scan_iter(match=f"{settings.redis_prefix}*", count=1000)]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()
    await pool.close()


@pytest.fixture
async def admin_key(settings: Settings) -> str:
    """An admin API key in the test's schema."""
    pool = await db.create_pool(settings, min_size=1, max_size=1)
    try:
        return await create_key(pool, "admin", label="test")
    finally:
        await pool.close()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    """The app in the test's schema and key space (no background sweeper).

    It runs on the test client's own event loop: talk to it over HTTP only.
    """
    app = create_app(msgspec.structs.replace(settings, background=False))
    async with AsyncTestClient(app) as c:
        yield c


@pytest.fixture
def public_url(deps: Deps) -> None:
    deps.settings = msgspec.structs.replace(deps.settings, public_url=f"https://{HOST}")


@pytest.fixture
def inbox(deps: Deps, public_url: None) -> Iterator[Inbox]:
    """A real SMTP server the test's deps send to; what it accepted, as it arrives."""
    with smtp_server(deps) as box:
        yield box
