"""The pickup desk. Staff of a store see only that store's reservations: anything
else is "not found", so nothing about other stores leaks."""

from __future__ import annotations

from datetime import datetime

import msgspec

from service import errors, events
from service.deps import Deps
from service.stock.codes import format_code, normalize_code

_CARD = """
SELECT r.id, r.code, r.status, r.store_id, r.sku_id, k.name AS sku_name, s.name AS store_name,
       g.name AS customer_name, g.public_id, r.created_at, r.collected_at, r.collected_by,
       r.cancelled_at
FROM reservations r
JOIN registrations g ON g.id = r.registration_id
JOIN skus k ON k.launch_id = r.launch_id AND k.id = r.sku_id
JOIN stores s ON s.launch_id = r.launch_id AND s.id = r.store_id
WHERE r.launch_id = $1 AND r.store_id = $2
"""


class PickupCard(msgspec.Struct, frozen=True, kw_only=True):
    reservation_id: int
    code: str
    code_display: str
    status: str
    store_id: str
    store_name: str
    sku_id: str
    sku_name: str
    customer_name: str | None
    """Check it against the customer's ID."""
    customer_public_id: str
    created_at: datetime
    collected_at: datetime | None
    collected_by: str | None
    cancelled_at: datetime | None


class PickupList(msgspec.Struct, frozen=True, kw_only=True):
    store_id: str
    expected: int
    collected: int
    outstanding: int
    reservations: list[PickupCard]


def _card(row: object) -> PickupCard:
    r = dict(row)  # type: ignore[call-overload]
    return PickupCard(
        reservation_id=r["id"],
        code=r["code"],
        code_display=format_code(r["code"]),
        status=r["status"],
        store_id=r["store_id"],
        store_name=r["store_name"],
        sku_id=r["sku_id"],
        sku_name=r["sku_name"],
        customer_name=r["customer_name"],
        customer_public_id=r["public_id"],
        created_at=r["created_at"],
        collected_at=r["collected_at"],
        collected_by=r["collected_by"],
        cancelled_at=r["cancelled_at"],
    )


async def lookup(deps: Deps, launch_id: str, store_id: str, typed: str) -> PickupCard:
    """The reservation a code names, at this store only."""
    code = normalize_code(typed)
    row = await deps.pool.fetchrow(_CARD + " AND r.code = $3", launch_id, store_id, code)
    if row is None:
        raise errors.NotFound("No reservation with this code at this store.")
    return _card(row)


async def collect(
    deps: Deps, launch_id: str, store_id: str, typed: str, *, actor: str
) -> PickupCard:
    """Mark the reservation collected, exactly once; a second desk is told when and by whom."""
    code = normalize_code(typed)
    async with deps.pool.acquire() as con, con.transaction():
        done = await con.fetchval(
            "UPDATE reservations SET status = 'collected', collected_at = now(),"
            " collected_by = $4 WHERE launch_id = $1 AND store_id = $2 AND code = $3"
            " AND status = 'confirmed' RETURNING id",
            launch_id,
            store_id,
            code,
            actor,
        )
        if done is not None:
            await events.record(
                con,
                launch_id=launch_id,
                actor=actor,
                channel="store",
                kind="reservation.collected",
                subject=f"reservation:{done}",
                data={"store": store_id, "code": code},
            )
    card = await lookup(deps, launch_id, store_id, code)
    if done is None:
        if card.status == "collected":
            raise errors.AlreadyCollected(
                f"Collected at {card.collected_at:%Y-%m-%d %H:%M:%S %Z} by {card.collected_by}.",
                collected_at=card.collected_at.isoformat() if card.collected_at else None,
                collected_by=card.collected_by,
            )
        raise errors.NotCollectable(f"This reservation is {card.status}; it cannot be collected.")
    return card


async def pickup_list(deps: Deps, launch_id: str, store_id: str) -> PickupList:
    rows = await deps.pool.fetch(
        _CARD + " AND r.status IN ('confirmed', 'collected') ORDER BY r.id", launch_id, store_id
    )
    cards = [_card(r) for r in rows]
    collected = sum(1 for c in cards if c.status == "collected")
    return PickupList(
        store_id=store_id,
        expected=len(cards),
        collected=collected,
        outstanding=len(cards) - collected,
        reservations=cards,
    )
