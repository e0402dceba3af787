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
    keys = deps.keys(launch_id)
    if topic == "add_units":
        # The units [first, end); rows enqueued before runs were sent list them one by one.
        units = (p["first"], p["end"]) if "first" in p else (0, 0, *sorted(p["units"]))
        reply = await deps.scripts.run(
            "add_units", keys, str(outbox_id), pair(p["store"], p["sku"]), *units
        )
    elif topic == "return_unit":
        reply = await deps.scripts.run(
            "return_unit",
            keys,
            str(outbox_id),
            p["store"],
            p["sku"],
            p["unit"],
            p["registration"],
            p["slot"],
            p.get("hold", ""),  # rows enqueued before the hold id was recorded lack it
        )
    elif topic == "move_unit":
        reply = await deps.scripts.run(
            "move_unit",
            keys,
            str(outbox_id),
            p["store"],
            p["sku"],
            p["unit"],
            p["hold"],
            p["to_store"],
            p["to_hold"],
        )
    else:
        raise ValueError(f"not a stock topic: {topic}")
    # 'not-loaded': Redis lost the launch; the rebuild reads Postgres, which has this.
    return str(reply[0])


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
