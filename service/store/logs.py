"""A launch's Redis logs that scripts append to (hold events, queue places), drained
into Postgres (`service/infra/drain.py`), and the launch's keys as a whole."""

from __future__ import annotations

from service.infra.db import Pool
from service.infra.drain import Store, drain_list
from service.infra.keys import LaunchKeys
from service.infra.redis import Scripts
from service.store.records import reading


async def hold_log(scripts: Scripts, keys: LaunchKeys, count: int = -1) -> list[str]:
    """The oldest `count` (-1: all) lines of the launch's hold event log."""
    last = count - 1 if count > 0 else -1
    with reading():
        return [str(line) for line in await scripts.client.lrange(keys.evlog, 0, last)]


async def drain_hold_log(
    scripts: Scripts, pool: Pool, keys: LaunchKeys, copy: Store, *, batch: int, most: int
) -> int:
    """Copy the hold event log's oldest lines with `copy`, then trim them."""
    with reading():
        return await drain_list(pool, scripts.client, keys.evlog, copy, batch=batch, most=most)


async def drain_place_log(
    scripts: Scripts, pool: Pool, keys: LaunchKeys, copy: Store, *, batch: int, most: int
) -> int:
    """Copy the place log's oldest lines (places given after the draw), then trim them."""
    with reading():
        return await drain_list(pool, scripts.client, keys.placelog, copy, batch=batch, most=most)


async def forget_launch(scripts: Scripts, keys: LaunchKeys) -> None:
    """Delete every key of the launch."""
    with reading():
        await scripts.client.delete(*keys.all)


async def ping(scripts: Scripts) -> None:
    """Whether Redis answers (raises `Unavailable` if not)."""
    with reading():
        await scripts.client.ping()
