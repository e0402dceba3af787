"""The audit trail: every change of state is an event row (who, what, when, channel)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from service.infra.db import Conn, Pool

INSERT_EVENT = (
    "INSERT INTO events (launch_id, actor, channel, kind, subject, data)"
    " VALUES ($1, $2, $3, $4, $5, $6) RETURNING at"
)


async def record(
    con: Conn | Pool,
    *,
    launch_id: str | None,
    actor: str,
    channel: str,
    kind: str,
    subject: str | None = None,
    data: dict[str, Any] | None = None,
) -> datetime:
    """Record one event; returns when it was recorded (the transaction's time)."""
    at: datetime = await con.fetchval(
        INSERT_EVENT, launch_id, actor, channel, kind, subject, data or {}
    )
    return at


async def record_many(
    con: Conn,
    *,
    launch_id: str,
    channel: str,
    kind: str,
    rows: Sequence[tuple[str, str | None, dict[str, Any], str]],
) -> None:
    """Events of one kind in one statement, each row (actor, subject, data, source_id);
    a row whose `source_id` was recorded before is left out, so a retry adds nothing."""
    if rows:
        await con.execute(
            "INSERT INTO events (launch_id, actor, channel, kind, subject, data, source_id)"
            " SELECT $1, actor, $2, $3, subject, data, source_id"
            " FROM unnest($4::text[], $5::text[], $6::jsonb[], $7::text[])"
            " AS t(actor, subject, data, source_id)"
            " ON CONFLICT (source_id) DO NOTHING",
            launch_id,
            channel,
            kind,
            *map(list, zip(*rows, strict=True)),
        )
