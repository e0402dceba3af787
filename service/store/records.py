"""What the launch's Redis keys hold, named once: the hold record, the `meta` fields."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Final

import msgspec
from redis.exceptions import RedisError

from service.infra.outages import outage

# Fields of a launch's `meta` hash (lua/_shared.lua describes them; the Lua spells the same).
LOADED: Final = "loaded"
"""'1' once `load` finished: until then every script answers 'not-loaded'."""
SELLING: Final = "selling"
"""'1' while the scripts may hold and admit."""
HOLD_MS: Final = "hold_ms"
"""How long a hold lasts, in ms."""
LIMIT: Final = "limit"
"""Units a customer may hold and reserve together."""
SUSPECT: Final = "suspect"
"""Set (to a ms time) when Postgres refused a confirm Redis allowed: the sweeper mends."""


_HOLD_FIELDS = {
    "registration_id": "r",
    "store_id": "s",
    "sku_id": "k",
    "unit_no": "u",
    "slot": "l",
    "expires_ms": "e",
    "state": "st",
    "rank": "q",
    "deadline_ms": "d",
}


class HoldRecord(msgspec.Struct, frozen=True, rename=_HOLD_FIELDS):
    """A value of the launch's `holds` hash (JSON written by lua/reserve.lua and
    lua/move_begin.lua; the one-letter keys keep each hold's record small)."""

    registration_id: int
    store_id: str
    sku_id: str
    unit_no: int
    expires_ms: int
    state: str = "held"
    """`held` or `confirming`."""
    slot: int | None = None
    """None: a move's hold, which has no slot of its own."""
    rank: int | bool = False
    """The queue rank of the turn it was taken in; false when staff vouched."""
    deadline_ms: int | None = None
    """While confirming: when the reconciler takes over."""


_HOLD = msgspec.json.Decoder(HoldRecord, strict=False)  # reg ids are JSON strings


def hold_record(raw: str | bytes) -> HoldRecord:
    return _HOLD.decode(raw)


@contextlib.contextmanager
def reading() -> Iterator[None]:
    """Around a direct Redis call: Redis out becomes `Unavailable`, as in `Scripts.run`."""
    try:
        yield
    except RedisError as exc:
        if (down := outage(exc)) is None:
            raise
        raise down from exc
