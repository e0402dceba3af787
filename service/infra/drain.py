"""Copying a Redis list into Postgres: the hold events and the queue places.

Scripts append lines to a per-launch list in the same atomic step as the change they
describe; a background job copies the oldest lines into Postgres, then trims exactly those.
One drainer per list at a time (an advisory lock held across copy and trim), so the
trim never removes a line nobody copied. A crash between copy and trim copies the same
lines again: each store is idempotent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from service.infra.db import Conn, Pool

Store = Callable[[Conn, list[str]], Awaitable[None]]


async def drain_list(
    pool: Pool, redis: Any, key: str, store: Store, *, batch: int = 500, most: int = 100_000
) -> int:
    """Copy the oldest lines of Redis list `key` with `store`, `batch` at a time, and trim
    each batch once stored; go on while batches come full, up to `most` lines (so a
    sweep keeps up with a launch's busiest second). Returns how many were copied."""
    copied = 0
    async with pool.acquire() as con:
        await con.execute("SELECT pg_advisory_lock(hashtext($1))", f"fairdrop-drain:{key}")
        try:
            while copied < most:
                lines = [str(line) for line in await redis.lrange(key, 0, batch - 1)]
                if lines:
                    await store(con, lines)
                    await redis.ltrim(key, len(lines), -1)
                    copied += len(lines)
                if len(lines) < batch:
                    break
        finally:
            await con.execute("SELECT pg_advisory_unlock(hashtext($1))", f"fairdrop-drain:{key}")
    return copied
