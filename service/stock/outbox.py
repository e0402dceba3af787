"""Stock changes committed in Postgres reach Redis through the outbox.

Each row is applied by a Lua script that records its outbox id, so applying a row
twice (a retry, two processes) changes nothing the second time.
"""

from __future__ import annotations

import logging
from typing import Any

from service.deps import Deps
from service.infra.db import Conn
from service.infra.keys import pair
from service.store import supply

log = logging.getLogger(__name__)

STOCK_TOPICS = ["add_units", "return_unit", "move_unit"]


async def enqueue(con: Conn, launch_id: str, topic: str, payload: dict[str, Any]) -> int:
    outbox_id: int = await con.fetchval(
        "INSERT INTO outbox (launch_id, topic, payload) VALUES ($1, $2, $3) RETURNING id",
        launch_id,
        topic,
        payload,
    )
    return outbox_id


async def _apply(deps: Deps, launch_id: str, outbox_id: int, topic: str, p: dict[str, Any]) -> str:
    """Apply one stock row: 'ok', 'duplicate', or `store.NOT_LOADED` (Redis lost the
    launch; the rebuild reads Postgres, which has this)."""
    keys, scripts = deps.keys(launch_id), deps.scripts
    if topic == "add_units":
        # The units [first, end); rows enqueued before runs were sent list them one by one.
        first, end, units = (
            (p["first"], p["end"], ()) if "first" in p else (0, 0, sorted(p["units"]))
        )
        return await supply.add_units(
            scripts,
            keys,
            outbox_id=outbox_id,
            pair=pair(p["store"], p["sku"]),
            first=first,
            end=end,
            units=units,
        )
    if topic == "return_unit":
        return await supply.return_unit(
            scripts,
            keys,
            outbox_id=outbox_id,
            store_id=p["store"],
            sku_id=p["sku"],
            unit_no=p["unit"],
            registration_id=p["registration"],
            slot=p["slot"],
            hold_id=p.get("hold", ""),  # rows enqueued before the hold id was recorded lack it
        )
    if topic == "move_unit":
        return await supply.move_unit(
            scripts,
            keys,
            outbox_id=outbox_id,
            store_id=p["store"],
            sku_id=p["sku"],
            unit_no=p["unit"],
            hold_id=p["hold"],
            to_store_id=p["to_store"],
            to_hold_id=p["to_hold"],
        )
    raise ValueError(f"not a stock topic: {topic}")


async def apply_pending(deps: Deps, launch_id: str | None = None, limit: int = 200) -> int:
    """Apply pending stock rows (all launches, or one). Returns how many were applied."""
    applied = 0
    async with deps.pool.acquire() as con, con.transaction():
        rows = await con.fetch(
            "SELECT id, launch_id, topic, payload FROM outbox"
            " WHERE processed_at IS NULL AND topic = ANY($1)"
            " AND ($2::text IS NULL OR launch_id = $2)"
            " ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED",
            STOCK_TOPICS,
            launch_id,
            limit,
        )
        for row in rows:
            await _apply(deps, row["launch_id"], row["id"], row["topic"], row["payload"])
            applied += 1
        if rows:
            await con.execute(
                "UPDATE outbox SET processed_at = now(), attempts = attempts + 1"
                " WHERE id = ANY($1)",
                [row["id"] for row in rows],
            )
    return applied


async def apply_now(deps: Deps, launch_id: str) -> None:
    """Best effort right after a commit; the sweeper retries whatever this misses."""
    try:
        await apply_pending(deps, launch_id)
    except Exception:  # the outbox keeps the row; the sweeper will apply it
        log.exception("applying the stock outbox of %s failed; the sweeper will retry", launch_id)
