"""Loaders of the kinds that tell a shopper when to act: check-in opens, your turn,
hold expiring or released, pickup reminder, and the lottery's not drawn / moved up.

Each loader gathers, at send time, what its template pair in `templates/` shows;
`LETTERS` is merged into `sender.KINDS` by the package.
"""

from __future__ import annotations

from typing import Any

from service.infra.db import Conn
from service.moments import when, when_ms
from service.notify.sender import (
    Letter,
    Loader,
    Undeliverable,
    load_confirmed_reservation,
    load_lottery,
    load_registration,
)

_LAUNCH = """
SELECT fairness_mode, sale_starts_at, pickup_starts_at, pickup_ends_at, time_zone
FROM launches WHERE id = $1
"""

_ITEMS = """
SELECT (SELECT name FROM stores WHERE launch_id = $1 AND id = $2) AS store,
       (SELECT name FROM skus WHERE launch_id = $1 AND id = $3) AS sku
"""


def _zone(letter: Letter) -> str:
    zone: str = letter.context["launch"].get("time_zone", "UTC")
    return zone


async def _with_launch(con: Conn, launch_id: str, letter: Letter) -> Letter:
    row = await con.fetchrow(_LAUNCH, launch_id)
    if row is None:
        raise Undeliverable("the launch is gone")
    zone = row["time_zone"]
    letter.context["launch"] |= {
        "mode": row["fairness_mode"],
        "sale_starts": when(row["sale_starts_at"], zone) if row["sale_starts_at"] else None,
        "pickup_starts": when(row["pickup_starts_at"], zone),
        "pickup_ends": when(row["pickup_ends_at"], zone),
    }
    return letter


async def load_checkin_open(con: Conn, launch_id: str, p: dict[str, Any]) -> Letter:
    return await _with_launch(con, launch_id, await load_registration(con, launch_id, p))


async def load_your_turn(con: Conn, launch_id: str, p: dict[str, Any]) -> Letter:
    letter = await load_registration(con, launch_id, p)
    letter.context["until"] = when_ms(p["until_ms"], _zone(letter))
    return letter


async def _hold(con: Conn, launch_id: str, p: dict[str, Any]) -> Letter:
    letter = await load_registration(con, launch_id, p)
    row = await con.fetchrow(_ITEMS, launch_id, p["store"], p["sku"])
    assert row is not None
    letter.context["hold"] = {
        "id": p["hold"],
        "store": row["store"] or p["store"],
        "sku": row["sku"] or p["sku"],
        "expires": when_ms(p["expires_ms"], _zone(letter)) if "expires_ms" in p else None,
    }
    return letter


async def load_hold_expiring(con: Conn, launch_id: str, p: dict[str, Any]) -> Letter:
    confirmed = await con.fetchval(
        "SELECT 1 FROM reservations WHERE launch_id = $1 AND hold_id = $2", launch_id, p["hold"]
    )
    if confirmed:
        raise Undeliverable("the hold was confirmed meanwhile")
    return await _hold(con, launch_id, p)


async def load_pickup_reminder(con: Conn, launch_id: str, p: dict[str, Any]) -> Letter:
    letter = await _with_launch(con, launch_id, await load_confirmed_reservation(con, launch_id, p))
    letter.context["stage"] = p["stage"]
    return letter


LETTERS: dict[str, Loader] = {
    "checkin_open": load_checkin_open,
    "your_turn": load_your_turn,
    "hold_expiring": load_hold_expiring,
    "hold_released": _hold,
    "pickup_reminder": load_pickup_reminder,
    "not_drawn": load_lottery,  # with the place on the waiting list, when given
    "moved_up": load_checkin_open,  # the same facts: when the sale starts
}
