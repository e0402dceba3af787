"""Seeding a selling launch through the service's own functions."""

from __future__ import annotations

import asyncio
from pathlib import Path

from _queue_seed import keep_ceiling

from service.admin import allocations, launches
from service.admin.models import ItemCreate, LaunchCreate, Transition
from service.auth.tokens import ShopperClaims
from service.deps import Deps
from service.queue import registrations, tickets
from service.stock import holds
from service.stock.counts import redis_counts

STORE, SKU = "S1", "SKU1"
_ACTOR, _CHANNEL = "bench", "admin"
_UNIT_STEP = 50_000  # units added per allocation call (one outbox row, one script call)
_IMPORT_STEP = 20_000


async def seed_launch(
    deps: Deps,
    launch_id: str,
    *,
    units: int,
    shoppers: int,
    limit: int,
    hold_seconds: int,
) -> list[int]:
    """A selling launch with one store, one SKU, `units` units and `shoppers` registrations.

    Returns the registration ids.
    """
    await launches.create_launch(
        deps,
        LaunchCreate(
            id=launch_id,
            name="bench",
            hold_seconds=hold_seconds,
            per_customer_limit=limit,
            fairness_mode="fifo",
            admit_rate=100_000,
            active_cap=1_000_000,
            admission_window_seconds=86_400,
        ),
        actor=_ACTOR,
        channel=_CHANNEL,
    )
    for table, item in (("stores", STORE), ("skus", SKU)):
        await launches.add_item(
            deps, launch_id, table, ItemCreate(id=item, name=item), actor=_ACTOR, channel=_CHANNEL
        )
    for allocated in range(_UNIT_STEP, units + _UNIT_STEP, _UNIT_STEP):
        await allocations.set_allocation(
            deps, launch_id, STORE, SKU, min(allocated, units), actor=_ACTOR, channel=_CHANNEL
        )
    for start in range(0, shoppers, _IMPORT_STEP):
        rows: list[tuple[int, dict[str, object]]] = [
            (i + 1, {"email": f"shopper{i}@bench.example", "name": f"Shopper {i}"})
            for i in range(start, min(start + _IMPORT_STEP, shoppers))
        ]
        await registrations.import_registrations(
            deps, launch_id, rows, actor=_ACTOR, channel=_CHANNEL
        )
    for state in ("checkin_open", "selling"):
        await launches.transition(
            deps,
            launch_id,
            Transition(action="advance", to=state, reason="bench"),  # type: ignore[arg-type]
            actor=_ACTOR,
            channel=_CHANNEL,
        )
    [count] = await redis_counts(deps, launch_id)
    if count.available != units:
        raise RuntimeError(f"seeded {units} units but Redis has {count.available} free")
    ids: list[int] = [
        r["id"]
        for r in await deps.pool.fetch(
            "SELECT id FROM registrations WHERE launch_id = $1 ORDER BY id", launch_id
        )
    ]
    if len(ids) != shoppers:
        raise RuntimeError(f"seeded {shoppers} registrations but found {len(ids)}")
    return ids


def sign_tokens(deps: Deps, launch_id: str, registration_ids: list[int]) -> dict[int, str]:
    """Shopper tokens signed with the server's secret (what `issue_token` would hand out)."""
    expires = deps.clock.now_ms() + 24 * 3600 * 1000
    return {r: deps.signer.sign(ShopperClaims(launch_id, r, expires)) for r in registration_ids}


async def admit_all(deps: Deps, launch_id: str, registration_ids: list[int]) -> dict[int, str]:
    """Check everyone in (the real script, pipelined) and wait until all are admitted;
    returns their queue tickets, which is what a hold needs."""
    keys = deps.keys(launch_id)
    replies: list[list[object]] = []
    ceiling = await keep_ceiling(deps, launch_id, len(registration_ids))
    for start in range(0, len(registration_ids), 5_000):
        chunk = registration_ids[start : start + 5_000]
        replies += await deps.scripts.run_many(
            "checkin", keys, [(deps.clock.now_ms(), r, ceiling) for r in chunk]
        )
    refused = [reply for reply in replies if reply[0] != "ok"]
    if refused:
        raise RuntimeError(f"{len(refused)} check-ins refused, e.g. {refused[0]!r}")
    ranks = {r: int(str(reply[1])) for r, reply in zip(registration_ids, replies, strict=True)}
    for _ in range(200):
        admitted = int((await deps.scripts.run("admit", keys, deps.clock.now_ms()))[2])
        if admitted >= len(registration_ids):
            break
        await asyncio.sleep(0.05)
    else:
        raise RuntimeError(f"only {admitted} of {len(registration_ids)} shoppers admitted")
    return {r: tickets.issue(deps, launch_id, r, rank) for r, rank in ranks.items()}


def write_tokens(path: Path, tokens: dict[int, str]) -> None:
    path.write_text("".join(f"{t}\n" for t in tokens.values()))


async def make_holds(
    deps: Deps, launch_id: str, registration_ids: list[int], n: int, *, concurrency: int = 64
) -> list[tuple[int, str]]:
    """`n` live holds spread round-robin over the registrations: (registration, hold id)."""
    made: list[tuple[int, str]] = []
    todo = iter(range(n))

    async def worker() -> None:
        for i in todo:
            reg = registration_ids[i % len(registration_ids)]
            hold = await holds.reserve(deps, launch_id, reg, STORE, SKU)
            made.append((reg, hold.hold_id))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return made


def write_pairs(path: Path, pairs: list[tuple[int, str]], tokens: dict[int, str]) -> None:
    path.write_text("".join(f"{tokens[reg]} {hold_id}\n" for reg, hold_id in pairs))
