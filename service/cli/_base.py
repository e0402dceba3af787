"""What every `fairdrop` command shares: one-line mistakes, the servers it runs against."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import NoReturn, TypeAlias, TypeVar

from service.clock import SystemClock
from service.deps import Deps
from service.infra import db
from service.infra.redis import redis_for
from service.infra.settings import Settings

T = TypeVar("T")

Subparsers: TypeAlias = "argparse._SubParsersAction[Parser]"
"""What `add_subparsers` returns: each command module adds its commands to it."""


def fail(message: str) -> NoReturn:
    """A user's mistake: one line on stderr, exit status 2, no traceback."""
    print(f"fairdrop: {message}", file=sys.stderr)
    raise SystemExit(2)


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        fail(f"{message} (see {self.prog} --help)")


@contextlib.contextmanager
def resolved(settings: Settings) -> Iterator[Settings]:
    """Settings with real URLs: the given ones, or embedded servers started for this run."""
    if not settings.embedded:
        yield settings
        return
    from service.infra.embedded import services

    print(
        "fairdrop: DATABASE_URL/REDIS_URL unset; starting embedded PostgreSQL and Valkey…",
        file=sys.stderr,
    )
    with services(settings) as resolved:
        yield resolved


async def with_deps(settings: Settings, work: Callable[[Deps], Awaitable[T]]) -> T:
    assert settings.database_url is not None and settings.redis_url is not None
    await db.migrate_url(settings.database_url, settings.db_schema)
    pool = await db.create_pool(settings, min_size=1, max_size=5)
    redis = redis_for(settings)
    try:
        return await work(Deps(settings=settings, pool=pool, redis=redis, clock=SystemClock()))
    finally:
        await redis.aclose()
        await pool.close()
