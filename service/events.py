"""The audit trail: every change of state is an event row (who, what, when, channel)."""

from __future__ import annotations

from typing import Any

from service.infra.db import Conn, Pool

INSERT_EVENT = (
    "INSERT INTO events (launch_id, actor, channel, kind, subject, data)"
    " VALUES ($1, $2, $3, $4, $5, $6)"
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
) -> None:
    await con.execute(INSERT_EVENT, launch_id, actor, channel, kind, subject, data or {})
