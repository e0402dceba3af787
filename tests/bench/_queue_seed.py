"""Seeding the waiting room in bulk: registrations by COPY, check-ins by pipelined EVALSHA.

A million check-ins through redis-py's pipeline cost ~40 us of client CPU each (the
script call, its 17 keys, the reply parsing), so `checkin_bulk` writes the same
EVALSHA of the same `checkin` script with the same KEYS and ARGV as `check_in` does,
pre-encoded, down one raw connection, and reads the replies with hiredis. Redis runs
exactly what it runs for a real check-in; only the client side is cheaper.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import hiredis
from redis.asyncio.connection import parse_url

from service.admin import allocations, launches
from service.admin.models import ItemCreate, LaunchCreate, Transition
from service.auth.tokens import ShopperClaims
from service.deps import Deps
from service.infra.lua import script_keys, script_source
from service.queue import checkin
from service.queue.tickets import TTL_MS, TicketClaims

STORE, SKU = "S1", "SKU1"
_ACTOR, _CHANNEL = "bench", "admin"
_CHUNK = 10_000  # commands written before their replies are read
# Base32's alphabet mapped onto the public ids' (Crockford, lower case).
_CROCKFORD = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789abcdefghjkmnpqrstvwxyz"
)


async def queue_launch(
    deps: Deps,
    launch_id: str,
    *,
    mode: str,
    units: int,
    admit_rate: float = 5.0,
    active_cap: int = 500,
) -> None:
    """A draft launch in `mode` with one store, one SKU and `units` units."""
    await launches.create_launch(
        deps,
        LaunchCreate(
            id=launch_id,
            name="bench",
            fairness_mode=mode,  # type: ignore[arg-type]
            admit_rate=admit_rate,
            active_cap=active_cap,
            hold_seconds=3600,
        ),
        actor=_ACTOR,
        channel=_CHANNEL,
    )
    for table, item in (("stores", STORE), ("skus", SKU)):
        await launches.add_item(
            deps, launch_id, table, ItemCreate(id=item, name=item), actor=_ACTOR, channel=_CHANNEL
        )
    await allocations.set_allocation(
        deps, launch_id, STORE, SKU, units, actor=_ACTOR, channel=_CHANNEL
    )


async def advance(deps: Deps, launch_id: str, to: str) -> None:
    await launches.transition(
        deps,
        launch_id,
        Transition(action="advance", to=to, reason="bench"),  # type: ignore[arg-type]
        actor=_ACTOR,
        channel=_CHANNEL,
    )


def public_ids(n: int) -> list[str]:
    """`n` ids shaped like `registrations.new_public_id()` ("r" + 12 of its alphabet)."""
    text = base64.b32encode(os.urandom(n * 15 // 2 + 15)).translate(_CROCKFORD).decode()
    ids = ["r" + text[i * 12 : i * 12 + 12] for i in range(n)]
    if len(set(ids)) != n:  # 60 random bits each: practically never
        raise RuntimeError("duplicate public id drawn; run again")
    return ids


async def copy_registrations(deps: Deps, launch_id: str, n: int) -> list[int]:
    """`n` verified registrations by one COPY; returns their ids in insertion order."""
    now = datetime.now(UTC)
    rows = (
        (launch_id, pid, f"shopper{i}@bench.example", f"shopper{i}@bench.example", now)
        for i, pid in enumerate(public_ids(n))
    )
    async with deps.pool.acquire() as con:
        await con.copy_records_to_table(
            "registrations",
            records=rows,
            columns=["launch_id", "public_id", "email", "email_norm", "verified_at"],
        )
    return [
        r["id"]
        for r in await deps.pool.fetch(
            "SELECT id FROM registrations WHERE launch_id = $1 ORDER BY id", launch_id
        )
    ]


def _bulk(parts: Sequence[bytes]) -> bytes:
    return b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


async def keep_ceiling(deps: Deps, launch_id: str, count: int) -> int:
    """A rank ceiling Postgres keeps for `count` more check-ins past the queue as Redis
    has it now (ranks given after the draw must lie below one), for bulk check-ins that
    pass it to the script instead of asking for one each time."""
    qlen = int(await deps.redis.hget(deps.keys(launch_id).qmeta, "qlen") or 0)
    return await checkin.reserve_ranks(deps, launch_id, qlen + count)


async def checkin_bulk(deps: Deps, launch_id: str, registration_ids: Iterable[int]) -> list[int]:
    """Check each registration in with the real `checkin` script; returns the ranks
    (-1: pre-queue). Pipelined in chunks of 10,000 on one connection of its own."""
    assert deps.settings.redis_url is not None
    sha = (await deps.redis.script_load(script_source("checkin"))).encode()
    keys = [k.encode() for k in deps.keys(launch_id).named(script_keys("checkin"))]
    head = b"*%d\r\n" % (3 + len(keys) + 3) + _bulk(
        [b"EVALSHA", sha, str(len(keys)).encode(), *keys]
    )
    ids = list(registration_ids)
    ceiling = _bulk([str(await keep_ceiling(deps, launch_id, len(ids))).encode()])
    where = parse_url(deps.settings.redis_url)
    reader, writer = await asyncio.open_connection(
        where.get("host", "127.0.0.1"), where.get("port", 6379)
    )
    replies = hiredis.Reader()
    ranks: list[int] = []

    async def command(*parts: bytes) -> object:
        writer.write(b"*%d\r\n" % len(parts) + _bulk(parts))
        while (reply := replies.gets()) is False:
            replies.feed(await reader.read(1 << 16))
        return reply

    try:
        if where.get("password"):
            user = where.get("username")
            auth = [user.encode()] if user else []
            await command(b"AUTH", *auth, str(where["password"]).encode())
        await command(b"SELECT", str(where.get("db", 0)).encode())
        for start in range(0, len(ids), _CHUNK):
            now = _bulk([str(deps.clock.now_ms()).encode()])
            chunk = ids[start : start + _CHUNK]
            writer.write(b"".join(head + now + _bulk([str(r).encode()]) + ceiling for r in chunk))
            got = 0
            while got < len(chunk):
                replies.feed(await reader.read(1 << 20))
                while (reply := replies.gets()) is not False:
                    if isinstance(reply, hiredis.ReplyError) or reply[0] != b"ok":
                        raise RuntimeError(f"checkin failed: {reply!r}")
                    ranks.append(int(reply[1]))
                    got += 1
    finally:
        writer.close()
        await writer.wait_closed()
    return ranks


def sign_tickets(deps: Deps, launch_id: str, places: Iterable[tuple[int, int]]) -> list[str]:
    """Queue tickets for (registration, rank), as `tickets.issue` signs them."""
    expires = deps.clock.now_ms() + TTL_MS
    sign = deps.signer.sign
    return [sign(TicketClaims(launch_id, reg, rank, expires)) for reg, rank in places]


def sign_shopper_tokens(deps: Deps, launch_id: str, registration_ids: Iterable[int]) -> list[str]:
    expires = deps.clock.now_ms() + 24 * 3600 * 1000
    sign = deps.signer.sign
    return [sign(ShopperClaims(launch_id, r, expires)) for r in registration_ids]
