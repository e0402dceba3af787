"""From the audit trail to deliveries: each new event of a launch with endpoints (noted
in `webhook_inbox` by a trigger, in the event's own transaction) becomes its webhook
payloads, and each payload a delivery to every endpoint subscribed to its type.

One process at a time fans out (a transaction-scoped advisory lock), taking the inbox
in event order, so the deliveries of one order key (a reservation, a hold, a
registration, a launch) are created in the order their events committed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from service import subjects
from service.deps import Deps
from service.infra.db import Conn
from service.webhooks import payloads as p

_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || ':fairdrop-webhook-fanout'))"
_TAKE = """
WITH taken AS (
    DELETE FROM webhook_inbox
    WHERE event_id IN (SELECT event_id FROM webhook_inbox ORDER BY event_id LIMIT $1)
    RETURNING event_id
)
SELECT e.id, e.launch_id, e.at, e.channel, e.kind, e.subject, e.data
FROM events e JOIN taken t ON t.event_id = e.id ORDER BY e.id
"""
_INSERT = """
INSERT INTO webhook_deliveries
    (endpoint_id, message_id, event_id, type, order_key, payload, next_attempt_at)
SELECT *, $7::timestamptz FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[],
                                     $5::text[], $6::text[])
ON CONFLICT (endpoint_id, message_id) DO NOTHING
"""


class _Reservation(msgspec.Struct, frozen=True):
    registration_id: int
    code: str
    store_id: str
    sku_id: str


class _Facts(msgspec.Struct):
    customers: dict[int, p.WebhookCustomer]
    reservations: dict[int, _Reservation]


def _subject_id(row: asyncpg.Record, prefix: str) -> int | None:
    subject = row["subject"] or ""
    return int(subject.removeprefix(prefix)) if subject.startswith(prefix) else None


def _reservation_id(row: asyncpg.Record) -> int | None:
    rid = row["data"].get("reservation")
    return int(rid) if rid is not None else _subject_id(row, "reservation:")


def _registration_id(row: asyncpg.Record, facts: _Facts) -> int | None:
    reg = _subject_id(row, "registration:")
    if reg is None and (rid := _reservation_id(row)) is not None and rid in facts.reservations:
        reg = facts.reservations[rid].registration_id
    return reg


async def _facts(con: Conn, rows: list[asyncpg.Record]) -> _Facts:
    """The registrations and reservations the events name, as they are now."""
    rids = [r for row in rows if (r := _reservation_id(row)) is not None]
    reservations = {
        r["id"]: _Reservation(r["registration_id"], r["code"], r["store_id"], r["sku_id"])
        for r in await con.fetch(
            "SELECT id, registration_id, code, store_id, sku_id FROM reservations"
            " WHERE id = ANY($1::bigint[])",
            rids,
        )
    }
    facts = _Facts(customers={}, reservations=reservations)
    regs = [r for row in rows if (r := _registration_id(row, facts)) is not None]
    for reg in await con.fetch(
        "SELECT id, public_id, email, name, phone FROM registrations WHERE id = ANY($1::bigint[])",
        regs,
    ):
        facts.customers[reg["id"]] = p.WebhookCustomer(
            registration_id=reg["id"],
            public_id=reg["public_id"],
            email=reg["email"],
            name=reg["name"],
            phone=reg["phone"],
        )
    return facts


def _ms(value: Any) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(int(value) / 1000, tz=UTC)


def _iso(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


Built = list[tuple[str, p.WebhookEvent]]
"""(order key, payload) pairs made from one event."""
Builder = Callable[[asyncpg.Record, _Facts, dict[str, Any]], Built]
Payload = Callable[..., p.WebhookEvent]
"""A payload struct (an event type's), called with the envelope's fields and `data`."""


def _customer_event(
    cls: Payload,
    make: Callable[[p.WebhookCustomer, dict[str, Any]], Any],
    key: Callable[[int, dict[str, Any]], str] = lambda reg, d: subjects.registration(reg),
) -> Builder:
    def build(row: asyncpg.Record, facts: _Facts, env: dict[str, Any]) -> Built:
        reg = _registration_id(row, facts)
        customer = facts.customers.get(reg) if reg is not None else None
        if reg is None or customer is None:
            return []
        return [(key(reg, row["data"]), cls(**env, data=make(customer, row["data"])))]

    return build


def _hold(cls: Payload) -> Builder:
    def make(c: p.WebhookCustomer, d: dict[str, Any]) -> p.HoldData:
        return p.HoldData(customer=c, hold_id=d["hold"], store_id=d["store"], sku_id=d["sku"])

    inner = _customer_event(cls, make, key=lambda reg, d: f"hold:{d['hold']}")

    def build(row: asyncpg.Record, facts: _Facts, env: dict[str, Any]) -> Built:
        at = _ms(row["data"].get("at_ms"))  # when the script placed or dropped it
        return inner(row, facts, env | ({"timestamp": at} if at else {}))

    return build


def _reservation(
    cls: Payload,
    data_cls: type[p.ReservationData],
    status: str,
    extra: Callable[[dict[str, Any]], dict[str, Any]] = lambda d: {},
) -> Builder:
    def build(row: asyncpg.Record, facts: _Facts, env: dict[str, Any]) -> Built:
        rid = _reservation_id(row)
        res = facts.reservations.get(rid) if rid is not None else None
        customer = facts.customers.get(res.registration_id) if res is not None else None
        if rid is None or res is None or customer is None:
            return []
        d = row["data"]
        data = data_cls(
            customer=customer,
            reservation_id=rid,
            code=res.code,
            # Where it was at the time: a confirm and a move name the store.
            store_id=d.get("to_store") or d.get("store") or res.store_id,
            sku_id=res.sku_id,
            status=status,  # type: ignore[arg-type]
            **extra(d),
        )
        return [(subjects.reservation(rid), cls(**env, data=data))]

    return build


def _launch_state(row: asyncpg.Record, facts: _Facts, env: dict[str, Any]) -> Built:
    d = row["data"]
    key = subjects.launch(row["launch_id"])
    out: Built = [
        (
            key,
            p.LaunchStateChanged(
                **env,
                data=p.LaunchStateData(
                    action=row["kind"].removeprefix("launch."),
                    previous_state=d.get("from", ""),
                    state=d.get("to", ""),
                    paused=bool(d.get("paused")),
                    reason=d.get("reason"),
                ),
            ),
        )
    ]
    if d.get("to") == "sold_out" and d.get("from") != "sold_out":
        out.append((key, p.LaunchSoldOut(**env, data=p.SoldOutData(reason=d.get("reason")))))
    return out


BUILDERS: dict[str, Builder] = {
    "registration.created": _customer_event(
        p.RegistrationCreated,
        lambda c, d: p.RegistrationCreatedData(customer=c, imported=False, verified=False),
    ),
    "registration.imported": _customer_event(
        p.RegistrationCreated,
        lambda c, d: p.RegistrationCreatedData(customer=c, imported=True, verified=True),
    ),
    "registration.verified": _customer_event(
        p.RegistrationVerified, lambda c, d: p.RegistrationVerifiedData(customer=c)
    ),
    "queue.checked_in": _customer_event(
        p.QueueCheckedIn,
        lambda c, d: p.CheckedInData(
            customer=c, place=None if d.get("rank") is None else int(d["rank"]) + 1
        ),
    ),
    "queue.admitted": _customer_event(
        p.QueueAdmitted,
        lambda c, d: p.AdmittedData(customer=c, turn_ends_at=_ms(d.get("until_ms"))),
    ),
    "queue.left": _customer_event(
        p.QueueLeft,
        lambda c, d: p.LeftData(
            customer=c,
            place=None if d.get("rank") is None else int(d["rank"]) + 1,
            stage=d.get("from") or "waiting",
        ),
    ),
    "hold.held": _hold(p.HoldPlaced),
    "hold.released": _hold(p.HoldReleased),
    "hold.expired": _hold(p.HoldExpired),
    "reservation.confirmed": _reservation(p.ReservationConfirmed, p.ReservationData, "confirmed"),
    "reservation.cancelled": _reservation(
        p.ReservationCancelled,
        p.ReservationCancelledData,
        "cancelled",
        lambda d: {"reason": d.get("reason") or ""},
    ),
    "reservation.moved": _reservation(
        p.ReservationMoved,
        p.ReservationMovedData,
        "confirmed",
        lambda d: {"from_store_id": d.get("from_store", ""), "reason": d.get("reason") or ""},
    ),
    "reservation.collected": _reservation(p.ReservationCollected, p.ReservationData, "collected"),
    "reservation.no_show": _reservation(
        p.ReservationNoShow,
        p.ReservationNoShowData,
        "no_show",
        lambda d: {"pickup_ended_at": _iso(d.get("pickup_ended_at"))},
    ),
    "launch.advance": _launch_state,
    "launch.pause": _launch_state,
    "launch.resume": _launch_state,
    "launch.close": _launch_state,
}
"""Audit-trail kinds other systems hear about, and how each becomes payloads."""


def webhooks_of(row: asyncpg.Record, facts: _Facts) -> list[tuple[str, str, p.WebhookEvent]]:
    """The (message id, order key, payload) triples one event row makes."""
    build = BUILDERS.get(row["kind"])
    if build is None:
        return []
    env = {"id": "", "timestamp": row["at"], "launch_id": row["launch_id"]}
    out = []
    for i, (key, event) in enumerate(build(row, facts, env | {"channel": row["channel"]})):
        # One event may make two payloads (a state change to sold out is also `sold_out`).
        mid = f"evt_{row['id']}" if i == 0 else f"evt_{row['id']}_{i}"
        out.append((mid, key, msgspec.structs.replace(event, id=mid)))
    return out


def subscribed(events: list[str], event_type: str) -> bool:
    return "*" in events or event_type in events


async def fan_out(deps: Deps, *, batch: int = 500, most: int = 50_000) -> int:
    """Turn inbox events into deliveries, `batch` events a transaction, up to `most`.
    Returns how many events were taken (0 when another process holds the fan-out)."""
    taken = 0
    while taken < most:
        n = await _fan_out_batch(deps, batch)
        taken += n
        if n < batch:
            break
    return taken


async def _fan_out_batch(deps: Deps, batch: int) -> int:
    now = datetime.fromtimestamp(deps.clock.now_ms() / 1000, tz=UTC)
    async with deps.pool.acquire() as con, con.transaction():
        if not await con.fetchval(_LOCK):
            return 0
        rows = await con.fetch(_TAKE, batch)
        if not rows:
            return 0
        endpoints: dict[str, list[asyncpg.Record]] = defaultdict(list)
        for ep in await con.fetch(
            "SELECT id, launch_id, events, after_event FROM webhook_endpoints"
            " WHERE launch_id = ANY($1::text[]) ORDER BY id",
            sorted({row["launch_id"] for row in rows}),
        ):
            endpoints[ep["launch_id"]].append(ep)
        facts = await _facts(con, [r for r in rows if r["kind"] in BUILDERS])
        columns: tuple[list[Any], ...] = ([], [], [], [], [], [])
        for row in rows:
            targets = [ep for ep in endpoints[row["launch_id"]] if row["id"] > ep["after_event"]]
            if not targets:
                continue
            for mid, key, event in webhooks_of(row, facts):
                event_type = type(event).__struct_config__.tag
                body = p.encode(event)
                for ep in targets:
                    if subscribed(ep["events"], str(event_type)):
                        for column, value in zip(
                            columns,
                            (ep["id"], mid, row["id"], event_type, key, body),
                            strict=True,
                        ):
                            column.append(value)
        if columns[0]:
            await con.execute(_INSERT, *columns, now)
    return len(rows)
