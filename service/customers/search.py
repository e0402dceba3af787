"""Find a customer by what a caller on the phone can tell: e-mail, phone, name,
reservation code or public id, and show everything about them with the timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from service import errors
from service.admin.models import Registration
from service.deps import Deps
from service.pickup.windows import WINDOW_COLUMNS, PickupWindow
from service.queue import emails, phones
from service.stock.codes import format_code, normalize_code
from service.stock.models import RESERVATION_COLUMNS, Reservation, reservation_from_row

MAX_MATCHES = 20


class TimelineEntry(msgspec.Struct, frozen=True):
    at: datetime
    kind: str
    actor: str
    channel: str
    data: dict[str, Any]


class CustomerView(msgspec.Struct, frozen=True, kw_only=True):
    registration: Registration
    reservations: list[Reservation]
    codes: list[str]
    """The reservation codes as people read them (`ABCDE-FGHJK-M`)."""
    pickup: list[PickupWindow]
    """Each reservation's pickup window, in the same order."""
    timeline: list[TimelineEntry]


def _criteria(query: str) -> tuple[str, list[Any]]:
    """SQL matching registrations to what the agent typed."""
    q = query.strip()
    if "@" in q and emails.is_valid(q):
        return "g.email_norm = $1", [emails.normalize(q)]
    # A public id: "r" and 12 characters. (A code typed with its hyphens is 13 long too,
    # and one in 32 starts with R.)
    if q.lower().startswith("r") and len(q) == 13 and "-" not in q:
        return "g.public_id = $1", [q.lower()]
    code = None
    if any(ch.isalpha() for ch in q):  # only digits reads as a phone number
        try:
            code = normalize_code(q)
        except errors.InvalidCode:
            code = None
    if code is not None:
        return "g.id IN (SELECT registration_id FROM reservations WHERE code = $1)", [code]
    phone = phones.normalize(q) if any(ch.isdigit() for ch in q) else None
    if phone is not None:
        # Callers give national or international forms: match on the number without
        # its country or trunk prefix (the last digits, at least seven).
        tail = phone.lstrip("+").lstrip("0")
        if len(tail) >= 7:
            return "g.phone_norm LIKE '%' || $1", [tail]
    if len(q) < 3:
        raise errors.InvalidField("Type at least 3 characters of a name.", field="q")
    return "g.name ILIKE $1", [f"%{q}%"]


async def search(deps: Deps, query: str) -> list[CustomerView]:
    where, args = _criteria(query)
    columns = ", ".join(f"g.{field}" for field in Registration.__struct_fields__)
    rows = await deps.pool.fetch(
        f"SELECT {columns} FROM registrations g WHERE {where}"
        f" ORDER BY g.created_at DESC LIMIT {MAX_MATCHES}",
        *args,
    )
    return [await _view(deps, Registration(**dict(r))) for r in rows]


async def _view(deps: Deps, reg: Registration) -> CustomerView:
    reservations = [
        reservation_from_row(r)
        for r in await deps.pool.fetch(
            f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE registration_id = $1"
            " ORDER BY id",
            reg.id,
        )
    ]
    windows = {
        w["id"]: PickupWindow(
            reservation_id=w["id"],
            starts_at=w["pickup_starts_at"],
            ends_at=w["pickup_ends_at"],
            extended=w["pickup_extended"],
        )
        for w in await deps.pool.fetch(
            f"SELECT r.id, {WINDOW_COLUMNS} FROM reservations r"
            " JOIN launches l ON l.id = r.launch_id WHERE r.registration_id = $1",
            reg.id,
        )
    }
    subjects = [f"registration:{reg.id}"] + [f"reservation:{r.id}" for r in reservations]
    timeline = [
        TimelineEntry(
            at=e["at"], kind=e["kind"], actor=e["actor"], channel=e["channel"], data=e["data"]
        )
        for e in await deps.pool.fetch(
            "SELECT at, kind, actor, channel, data FROM events WHERE subject = ANY($1)"
            " ORDER BY at, id",
            subjects,
        )
    ]
    return CustomerView(
        registration=reg,
        reservations=reservations,
        codes=[format_code(r.code) for r in reservations],
        pickup=[windows[r.id] for r in reservations],
        timeline=timeline,
    )


async def view_of(deps: Deps, launch_id: str, registration_id: int) -> CustomerView:
    """One registration of `launch_id` with its reservations and timeline (self-service)."""
    columns = ", ".join(f"g.{field}" for field in Registration.__struct_fields__)
    row = await deps.pool.fetchrow(
        f"SELECT {columns} FROM registrations g WHERE g.launch_id = $1 AND g.id = $2",
        launch_id,
        registration_id,
    )
    if row is None:
        raise errors.NotFound("No such registration.")
    return await _view(deps, Registration(**dict(row)))
