"""Operators' webhook endpoints: register, list with their delivery log, change,
rotate the secret, delete, replay a delivery. Each change is an audit event (the secret
never is part of one)."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from service import errors, events
from service.deps import Deps
from service.infra.db import Conn
from service.webhooks import targets
from service.webhooks.models import (
    Delivery,
    DeliveryCounts,
    DeliveryStatus,
    DisabledEndpoint,
    Endpoint,
    EndpointCreate,
    EndpointCreated,
    EndpointUpdate,
    RotateSecret,
    SecretRotated,
)

LOG_SIZE = 20
_ENDPOINT_COLUMNS = (
    "id, launch_id, url, events, enabled, disabled_at, disabled_reason, failures,"
    " previous_until AS previous_secret_until,"
    " created_at"
)
_DELIVERY_COLUMNS = ", ".join(f for f in Delivery.__struct_fields__ if f != "next_attempt_at")
_DELIVERY_SELECT = (
    f"SELECT {_DELIVERY_COLUMNS},"
    " CASE WHEN status = 'pending' THEN next_attempt_at END AS next_attempt_at"
    " FROM webhook_deliveries"
)


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _now(deps: Deps) -> datetime:
    return datetime.fromtimestamp(deps.clock.now_ms() / 1000, tz=UTC)


def _unless_past(at: datetime | None, now: datetime) -> datetime | None:
    return at if at is not None and at > now else None


async def _target(deps: Deps, url: str) -> str:
    try:
        parsed = targets.check_url(url)
        await targets.check_address(parsed, allow_private=deps.settings.webhook_allow_private)
    except targets.Refused as exc:
        raise errors.InvalidField(str(exc), field="url") from exc
    return url


def _subscriptions(given: list[str]) -> list[str]:
    if "*" in given and len(set(given)) > 1:
        raise errors.InvalidField(
            '`["*"]` subscribes to every type; list types, or send "*" alone.', field="events"
        )
    return list(dict.fromkeys(given))


async def _record(
    con: Conn, launch_id: str, endpoint_id: str, kind: str, actor: str, channel: str, **data: Any
) -> None:
    await events.record(
        con,
        launch_id=launch_id,
        actor=actor,
        channel=channel,
        kind=kind,
        subject=f"webhook:{endpoint_id}",
        data={"endpoint": endpoint_id, **data},
    )


async def create_endpoint(
    deps: Deps, launch_id: str, body: EndpointCreate, *, actor: str, channel: str
) -> EndpointCreated:
    url = await _target(deps, body.url)
    subscriptions = _subscriptions(list(body.events))
    endpoint_id = "wh_" + secrets.token_hex(8)
    secret = new_secret()
    async with deps.pool.acquire() as con, con.transaction():
        try:
            await con.execute(
                "INSERT INTO webhook_endpoints (id, launch_id, url, events, secret, created_by,"
                " after_event) VALUES ($1, $2, $3, $4, $5, $6,"
                " (SELECT coalesce(max(id), 0) FROM events))",
                endpoint_id,
                launch_id,
                url,
                subscriptions,
                secret,
                actor,
            )
        except asyncpg.ForeignKeyViolationError as exc:
            raise errors.NotFound(f"No launch {launch_id!r}.") from exc
        await _record(
            con, launch_id, endpoint_id, "webhook.created", actor, channel, url=url,
            events=subscriptions,
        )  # fmt: skip
    return EndpointCreated(
        id=endpoint_id, secret=secret, endpoint=await get_endpoint(deps, launch_id, endpoint_id)
    )


async def _counts(deps: Deps, ids: list[str]) -> dict[str, DeliveryCounts]:
    rows = await deps.pool.fetch(
        "SELECT endpoint_id,"
        " count(*) FILTER (WHERE status = 'pending') AS pending,"
        " count(*) FILTER (WHERE status = 'delivered') AS delivered,"
        " count(*) FILTER (WHERE status = 'failed') AS failed"
        " FROM webhook_deliveries WHERE endpoint_id = ANY($1::text[]) GROUP BY endpoint_id",
        ids,
    )
    return {
        r["endpoint_id"]: DeliveryCounts(
            pending=r["pending"], delivered=r["delivered"], failed=r["failed"]
        )
        for r in rows
    }


async def _endpoints(deps: Deps, launch_id: str, endpoint_id: str | None) -> list[Endpoint]:
    rows = await deps.pool.fetch(
        f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE launch_id = $1"
        " AND ($2::text IS NULL OR id = $2) ORDER BY created_at, id",
        launch_id,
        endpoint_id,
    )
    counts = await _counts(deps, [r["id"] for r in rows])
    none = DeliveryCounts(pending=0, delivered=0, failed=0)
    now = _now(deps)
    return [
        Endpoint(
            **dict(r) | {"previous_secret_until": _unless_past(r["previous_secret_until"], now)},
            counts=counts.get(r["id"], none),
            deliveries=await list_deliveries(deps, launch_id, r["id"], limit=LOG_SIZE),
        )
        for r in rows
    ]


async def list_endpoints(deps: Deps, launch_id: str) -> list[Endpoint]:
    if not await deps.pool.fetchval("SELECT 1 FROM launches WHERE id = $1", launch_id):
        raise errors.NotFound(f"No launch {launch_id!r}.")
    return await _endpoints(deps, launch_id, None)


async def get_endpoint(deps: Deps, launch_id: str, endpoint_id: str) -> Endpoint:
    found = await _endpoints(deps, launch_id, endpoint_id)
    if not found:
        raise errors.NotFound("No such webhook endpoint in this launch.")
    return found[0]


async def update_endpoint(
    deps: Deps, launch_id: str, endpoint_id: str, body: EndpointUpdate, *, actor: str, channel: str
) -> Endpoint:
    changes: dict[str, Any] = {}
    if body.url is not msgspec.UNSET:
        changes["url"] = await _target(deps, body.url)
    if body.events is not msgspec.UNSET:
        changes["events"] = _subscriptions(list(body.events))
    values = list(changes.values())
    sets = [f"{col} = ${i}" for i, col in enumerate(changes, start=3)]
    if body.enabled is True:  # a fresh start: the failures that disabled it are forgotten
        sets.append(
            "enabled = true, disabled_at = NULL, disabled_reason = NULL, failures = 0,"
            " retry_at = '-infinity'"
        )
    elif body.enabled is False:
        values.append(f"switched off by an operator ({actor})")
        sets.append(f"enabled = false, disabled_at = now(), disabled_reason = ${len(values) + 2}")
    async with deps.pool.acquire() as con, con.transaction():
        done = await con.fetchval(
            f"UPDATE webhook_endpoints SET {', '.join(sets) or 'id = id'}"
            " WHERE launch_id = $1 AND id = $2 RETURNING id",
            launch_id,
            endpoint_id,
            *values,
        )
        if done is None:
            raise errors.NotFound("No such webhook endpoint in this launch.")
        if body.enabled is not msgspec.UNSET:
            changes["enabled"] = body.enabled
        if changes:
            await _record(con, launch_id, endpoint_id, "webhook.updated", actor, channel, **changes)
    return await get_endpoint(deps, launch_id, endpoint_id)


async def rotate_secret(
    deps: Deps, launch_id: str, endpoint_id: str, body: RotateSecret, *, actor: str, channel: str
) -> SecretRotated:
    """A new secret, shown once; the previous one signs too for `grace_seconds`."""
    secret = new_secret()
    until = _now(deps) + timedelta(seconds=body.grace_seconds) if body.grace_seconds else None
    async with deps.pool.acquire() as con, con.transaction():
        done = await con.fetchval(
            "UPDATE webhook_endpoints SET previous_secret = CASE WHEN $4::timestamptz IS NULL"
            " THEN NULL ELSE secret END, previous_until = $4, secret = $3"
            " WHERE launch_id = $1 AND id = $2 RETURNING id",
            launch_id,
            endpoint_id,
            secret,
            until,
        )
        if done is None:
            raise errors.NotFound("No such webhook endpoint in this launch.")
        await _record(
            con, launch_id, endpoint_id, "webhook.secret_rotated", actor, channel,
            previous_until=until.isoformat() if until else None,
        )  # fmt: skip
    return SecretRotated(id=endpoint_id, secret=secret, previous_secret_until=until)


async def delete_endpoint(
    deps: Deps, launch_id: str, endpoint_id: str, *, actor: str, channel: str
) -> None:
    """Remove the endpoint with its queue and log."""
    async with deps.pool.acquire() as con, con.transaction():
        url = await con.fetchval(
            "DELETE FROM webhook_endpoints WHERE launch_id = $1 AND id = $2 RETURNING url",
            launch_id,
            endpoint_id,
        )
        if url is None:
            raise errors.NotFound("No such webhook endpoint in this launch.")
        await _record(con, launch_id, endpoint_id, "webhook.deleted", actor, channel, url=url)


async def list_deliveries(
    deps: Deps,
    launch_id: str,
    endpoint_id: str,
    *,
    status: DeliveryStatus | None = None,
    before: int | None = None,
    limit: int = 100,
) -> list[Delivery]:
    """The endpoint's delivery log, newest first (`before`: an id, to page back)."""
    rows = await deps.pool.fetch(
        f"{_DELIVERY_SELECT} WHERE endpoint_id = $1"
        " AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE launch_id = $2)"
        " AND ($3::text IS NULL OR status = $3) AND ($4::bigint IS NULL OR id < $4)"
        " ORDER BY id DESC LIMIT $5",
        endpoint_id,
        launch_id,
        status,
        before,
        limit,
    )
    return [Delivery(**dict(r)) for r in rows]


async def replay(
    deps: Deps, launch_id: str, endpoint_id: str, delivery_id: int, *, actor: str, channel: str
) -> Delivery:
    """Send a delivery again now (a failed one, or one the receiver lost), with the same
    `webhook-id`; its attempts start over. Later deliveries of its order key wait for it."""
    now = _now(deps)
    async with deps.pool.acquire() as con, con.transaction():
        found = await con.fetchval(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $4"
            " WHERE id = $3 AND endpoint_id = $2"
            " AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE launch_id = $1)"
            " RETURNING id",
            launch_id,
            endpoint_id,
            delivery_id,
            now,
        )
        if found is None:
            raise errors.NotFound("No such delivery for this webhook endpoint.")
        # Asked for now: an endpoint backing off after failures tries again at once.
        await con.execute(
            "UPDATE webhook_endpoints SET retry_at = least(retry_at, $2) WHERE id = $1",
            endpoint_id,
            now,
        )
        await _record(
            con, launch_id, endpoint_id, "webhook.replayed", actor, channel, delivery=delivery_id
        )
        row = await con.fetchrow(f"{_DELIVERY_SELECT} WHERE id = $1", delivery_id)
    return Delivery(**dict(row))  # type: ignore[arg-type]


async def disabled_endpoints(deps: Deps, launch_id: str) -> list[DisabledEndpoint]:
    """The launch's endpoints that receive nothing until enabled again, and why."""
    rows = await deps.pool.fetch(
        "SELECT e.id, e.url, e.disabled_at, coalesce(e.disabled_reason, 'disabled') AS reason,"
        " (SELECT count(*) FROM webhook_deliveries d"
        "  WHERE d.endpoint_id = e.id AND d.status = 'pending') AS pending"
        " FROM webhook_endpoints e WHERE e.launch_id = $1 AND NOT e.enabled"
        " ORDER BY e.disabled_at DESC NULLS LAST, e.id",
        launch_id,
    )
    return [DisabledEndpoint(**dict(r)) for r in rows]
