"""Mending Redis where it offers a unit Postgres has sold.

Redis can only come to disagree with Postgres by a confirm that committed after Redis
let its hold go (a rebuild that read Postgres just before the insert committed) or by a
fault nothing foresaw. Two signs show it: `confirm_end` finds a committed confirm's hold
gone, and Postgres refuses a confirm that Redis allowed (`confirm_abort` marks the
launch `suspect`). Either way the units Postgres has sold are taken out of what Redis
offers (`lua/withdraw_sold.lua`): for the confirms at hand at once, for a suspect launch
all of its live reservations, by the sweeper. Both run under the launch's exclusive
lock, so no cancellation or move commits between reading Postgres and mending Redis.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from service.deps import Deps
from service.infra.db import allow_long
from service.infra.keys import pair
from service.store import supply

log = logging.getLogger(__name__)

_CHUNK = 2000  # units a script call
_LIVE = (
    "SELECT store_id, sku_id, unit_no, registration_id, slot FROM reservations"
    " WHERE launch_id = $1 AND unit_no IS NOT NULL"
)


async def mend_holds(deps: Deps, launch_id: str, hold_ids: Sequence[str]) -> int:
    """Take the units of these holds' live reservations out of Redis's stock, if Redis
    still offers them. Returns how many it took."""
    return await _mend(deps, launch_id, _LIVE + " AND hold_id = ANY($2)", [list(hold_ids)], "")


async def mend_if_suspect(deps: Deps, launch_id: str) -> int | None:
    """If Postgres refused a confirm Redis allowed, take every unit Postgres has sold out
    of Redis's stock and clear the mark. None: nothing was suspect."""
    mark = await supply.suspect_mark(deps.scripts, deps.keys(launch_id))
    if mark is None:
        return None
    return await _mend(deps, launch_id, _LIVE, [], mark)


async def _mend(deps: Deps, launch_id: str, sql: str, args: list[object], mark: str) -> int:
    keys, withdrawn = deps.keys(launch_id), 0
    async with deps.pool.acquire() as con, con.transaction():
        await con.execute("SELECT pg_advisory_xact_lock($1)", deps.launch_lock(launch_id))
        await allow_long(con, deps.settings)
        rows = await con.fetch(sql, launch_id, *args)
        units = [
            (
                pair(row["store_id"], row["sku_id"]),
                row["unit_no"],
                row["registration_id"],
                row["slot"],
            )
            for row in rows
        ]
        for start in range(0, max(len(units), 1), _CHUNK):
            last = start + _CHUNK >= len(units)
            withdrawn += await supply.withdraw_sold(
                deps.scripts, keys, mark=mark if last else "", units=units[start : start + _CHUNK]
            )
    if withdrawn:
        log.warning(
            "launch %s: Redis offered %d unit(s) Postgres has sold; withdrawn", launch_id, withdrawn
        )
    return withdrawn
