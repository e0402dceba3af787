"""A launch's registrations, reservations and audit trail as CSV, streamed.

Each export reads Postgres through a server-side cursor in one transaction (one
snapshot: a row changed meanwhile is shown once, as it was), `BATCH` rows at a time,
and hands out each batch as CSV text as it comes: a million rows never sit in memory,
here or in Postgres's reply (`tests/bench/export_bench.py`; docs/performance.md).

Cells a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab or
a carriage return) get a leading `'` (`safe_cell`), as the pickup list's CSV does.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from service.admin import launches
from service.deps import Deps
from service.stock.codes import format_code

BATCH = 2_000

Row = Callable[[asyncpg.Record], Sequence[object]]

REGISTRATION_COLUMNS = (
    "id", "public_id", "email", "name", "phone", "channel", "preferred_store", "created_at",
    "verified", "verified_at", "draw_status", "draw_place", "queue_place",
)  # fmt: skip
# draw_place: 1-based, once the draw is revealed; queue_place: a place given after the
# draw or in a first-come launch (1-based).
_REGISTRATIONS = """
SELECT r.id, r.public_id, r.email, r.name, r.phone, r.channel, r.preferred_store,
       r.created_at, r.verified_at, r.draw_status, d.place AS draw_place,
       q.rank + 1 AS queue_place
FROM registrations r
LEFT JOIN (
    SELECT u.id, u.place FROM draws, unnest(drawn) WITH ORDINALITY AS u(id, place)
    WHERE launch_id = $1 AND revealed_at IS NOT NULL
) d ON d.id = r.id
LEFT JOIN queue_places q ON q.launch_id = r.launch_id AND q.registration_id = r.id
WHERE r.launch_id = $1
ORDER BY r.id
"""

RESERVATION_COLUMNS = (
    "id", "code", "registration_public_id", "store_id", "sku_id", "status", "channel",
    "created_at", "pickup_ends_at", "collected_at", "collected_by", "cancelled_at",
)  # fmt: skip
_RESERVATIONS = """
SELECT v.id, v.code, r.public_id, v.store_id, v.sku_id, v.status, v.channel, v.created_at,
       v.pickup_ends_at, v.collected_at, v.collected_by, v.cancelled_at
FROM reservations v JOIN registrations r ON r.launch_id = v.launch_id AND r.id = v.registration_id
WHERE v.launch_id = $1
ORDER BY v.id
"""

AUDIT_COLUMNS = ("id", "at", "actor", "channel", "kind", "subject", "data")
_AUDIT = """
SELECT id, at, actor, channel, kind, subject, data FROM events
WHERE launch_id = $1 ORDER BY id
"""


def safe_cell(value: object) -> str:
    """`value` as a CSV cell text that no spreadsheet runs as a formula."""
    if value is None:
        text = ""
    elif isinstance(value, datetime):
        text = value.isoformat()
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _registration(r: asyncpg.Record) -> Sequence[object]:
    return (
        r["id"], r["public_id"], r["email"], r["name"], r["phone"], r["channel"],
        r["preferred_store"], r["created_at"], r["verified_at"] is not None, r["verified_at"],
        r["draw_status"], r["draw_place"], r["queue_place"],
    )  # fmt: skip


def _reservation(r: asyncpg.Record) -> Sequence[object]:
    return (r[0], format_code(r[1]), *r[2:])


def _audit(r: asyncpg.Record) -> Sequence[object]:
    return (*r[:6], json.dumps(r["data"], sort_keys=True, separators=(",", ":")))


EXPORTS: dict[str, tuple[tuple[str, ...], str, Row]] = {
    "registrations": (REGISTRATION_COLUMNS, _REGISTRATIONS, _registration),
    "reservations": (RESERVATION_COLUMNS, _RESERVATIONS, _reservation),
    "audit": (AUDIT_COLUMNS, _AUDIT, _audit),
}
"""Each export's header, query (of the launch id, `$1`) and row."""


def _lines(rows: Sequence[Sequence[object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows([safe_cell(v) for v in row] for row in rows)
    return out.getvalue().encode()


async def export(deps: Deps, launch_id: str, name: str) -> AsyncIterator[bytes]:
    """Check the launch exists (`NotFound` before any byte is sent), then return the
    export's CSV as an iterator of chunks: the header, then one chunk per batch."""
    await launches.get_launch(deps, launch_id)
    return _stream(deps, launch_id, *EXPORTS[name])


async def _stream(
    deps: Deps, launch_id: str, columns: tuple[str, ...], query: str, row: Row
) -> AsyncIterator[bytes]:
    yield _lines([columns])
    async with (
        deps.pool.acquire() as con,
        con.transaction(readonly=True, isolation="repeatable_read"),
    ):
        cursor: Any = await con.cursor(query, launch_id)
        while batch := await cursor.fetch(BATCH):
            yield _lines([row(r) for r in batch])
