"""Seeding a selling launch through the service's own functions."""

from __future__ import annotations

import asyncio
from pathlib import Path

from service.admin import allocations, launches
from service.admin.models import ItemCreate, LaunchCreate, Transition
from service.auth.tokens import ShopperClaims
from service.deps import Deps
from service.queue import registrations
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
    await launches.transition(
        deps,
        launch_id,
        Transition(action="advance", to="selling", reason="bench"),
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
