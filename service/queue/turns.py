"""What became of an admitted shopper's turn, in plain words.

Memory knows when a turn started and when its first window ends; only Redis knows
whether it ended early (the hold let go or run out) or goes on after a confirmation
(the customer may take more), and only Postgres whether what was reserved has been
cancelled since. Asked only for ranks already admitted: a few thousand shoppers at
most, and a page stops asking once the turn is over.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from service.deps import Deps
from service.queue.leave import LEFT
from service.stock.codes import format_code
from service.store import queue as qstore

Outcome = Literal["admitted", "done", "lapsed", "left"]

HOLDING = "It is your turn and a unit is held for you: confirm it before its time runs out."
LAPSED = (
    "Your turn has ended without a reservation: the time to choose ran out, or the hold"
    " was let go or ran out. The next person in line is now served."
)


class Turn(msgspec.Struct, frozen=True):
    state: Outcome
    message: str
    until_ms: int | None = None
    """While the turn goes on: when its time to place a hold ends."""


def _codes(codes: list[str]) -> str:
    shown = [format_code(c) for c in codes]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def _open(until_ms: int, used: int, limit: int) -> str:
    if used == 0:
        return "It is your turn: choose a store and hold your unit before your time runs out."
    more = limit - used
    return (
        f"It is still your turn: you have reserved {used} of the {limit} a customer may"
        f" have, so you may hold {more} more before your time runs out."
    )


async def _ended(deps: Deps, launch_id: str, registration_id: int) -> Turn:
    rows = await deps.pool.fetch(
        "SELECT code, status FROM reservations WHERE launch_id = $1 AND registration_id = $2"
        " ORDER BY id",
        launch_id,
        registration_id,
    )
    live = [r["code"] for r in rows if r["status"] in ("confirmed", "collected")]
    if live:
        word = "reservation" if len(live) == 1 else "reservations"
        return Turn(
            "done",
            f"Your turn is over: you have {word} {_codes(live)}. The pickup code is under"
            " “My reservation”.",
        )
    ended = [r["code"] for r in rows if r["status"] in ("cancelled", "released")]
    if ended:
        return Turn(
            "done",
            f"Your reservation {_codes(ended)} was cancelled, so its unit went back on sale to"
            " the people still in the queue. Your turn is over: each place in the queue gets"
            " one turn, so you cannot reserve again in this sale.",
        )
    return Turn("lapsed", LAPSED)


async def turn(deps: Deps, launch_id: str, rank: int, registration_id: int) -> Turn:
    """Where the turn of an admitted `rank` stands."""
    now = deps.clock.now_ms()
    reply = await qstore.turn(
        deps.scripts, deps.keys(launch_id), now_ms=now, rank=rank, registration_id=registration_id
    )
    if reply.word == "holding":
        return Turn("admitted", HOLDING)
    if reply.word == "left":
        return Turn("left", LEFT)
    if reply.word == "open":
        return Turn("admitted", _open(reply.until_ms, reply.used, reply.limit), reply.until_ms)
    return await _ended(deps, launch_id, registration_id)
