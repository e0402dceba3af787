"""Values the stock engine hands out."""

from __future__ import annotations

from datetime import datetime

import msgspec


class Hold(msgspec.Struct, frozen=True, kw_only=True):
    hold_id: str
    launch_id: str
    registration_id: int
    store_id: str
    sku_id: str
    unit_no: int
    expires_ms: int


class Reservation(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    launch_id: str
    hold_id: str
    registration_id: int
    store_id: str
    sku_id: str
    code: str
    status: str
    channel: str
    created_at: datetime
    collected_at: datetime | None = None
    cancelled_at: datetime | None = None


class StockCount(msgspec.Struct, frozen=True, kw_only=True):
    store_id: str
    sku_id: str
    allocated: int
    available: int
    held: int
    confirmed: int


RESERVATION_COLUMNS = (
    "id, launch_id, hold_id, registration_id, store_id, sku_id, code, status, channel,"
    " created_at, collected_at, cancelled_at"
)


def reservation_from_row(row: object) -> Reservation:
    return Reservation(**dict(row))  # type: ignore[call-overload]
