"""A launch's audit trail: its events, filtered by kind, actor and channel.

One query for the admin API (`GET /api/admin/launches/{id}/events`, oldest first after
a cursor) and the console (newest first, with the values there are to filter by)."""

from __future__ import annotations

from typing import Any

import msgspec

from service.deps import Deps


class Event(msgspec.Struct):
    id: int
    at: str
    actor: str
    channel: str
    kind: str
    subject: str | None
    data: dict[str, Any]


class Facets(msgspec.Struct, frozen=True, kw_only=True):
    """The kinds, actors and channels a launch's events have (to filter by)."""

    kinds: list[str]
    actors: list[str]
    channels: list[str]


async def launch_events(
    deps: Deps,
    launch_id: str,
    *,
    after: int = 0,
    limit: int = 200,
    kind: str | None = None,
    actor: str | None = None,
    channel: str | None = None,
    newest_first: bool = False,
) -> list[Event]:
    """The launch's events after id `after`; a filter left None matches every event."""
    order = "DESC" if newest_first else "ASC"
    rows = await deps.pool.fetch(
        "SELECT id, at, actor, channel, kind, subject, data FROM events"
        " WHERE launch_id = $1 AND id > $2 AND ($4::text IS NULL OR kind = $4)"
        " AND ($5::text IS NULL OR actor = $5) AND ($6::text IS NULL OR channel = $6)"
        f" ORDER BY id {order} LIMIT $3",
        launch_id,
        after,
        limit,
        kind,
        actor,
        channel,
    )
    return [Event(**{**dict(r), "at": r["at"].isoformat()}) for r in rows]


async def facets(deps: Deps, launch_id: str) -> Facets:
    row = await deps.pool.fetchrow(
        "SELECT array_agg(DISTINCT kind ORDER BY kind) AS kinds,"
        " array_agg(DISTINCT actor ORDER BY actor) AS actors,"
        " array_agg(DISTINCT channel ORDER BY channel) AS channels"
        " FROM events WHERE launch_id = $1",
        launch_id,
    )
    assert row is not None
    return Facets(
        kinds=list(row["kinds"] or []),
        actors=list(row["actors"] or []),
        channels=list(row["channels"] or []),
    )
