"""Find a customer by what a caller on the phone can tell: e-mail, phone, name,
reservation code or public id, and show everything about them with the timeline."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from service import errors, subjects
from service.admin.launches import launch_zone
from service.admin.models import Registration
from service.auth.apikeys import key_labels
from service.customers import history
from service.customers.story import TimelineEntry, queue_story
from service.deps import Deps
from service.pickup.windows import WINDOW_COLUMNS, PickupWindow
from service.queue import emails, phones
from service.stock.codes import format_code, normalize_code
from service.stock.models import RESERVATION_COLUMNS, Reservation, reservation_from_row

MAX_MATCHES = 20


class CustomerView(msgspec.Struct, frozen=True, kw_only=True):
    registration: Registration
    reservations: list[Reservation]
    codes: list[str]
    """The reservation codes as people read them (`ABCDE-FGHJK-M`)."""
    pickup: list[PickupWindow]
    """Each reservation's pickup window, in the same order."""
    timeline: list[TimelineEntry]


def _criteria(query: str, region: str) -> tuple[str, list[Any]]:
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
    national = phones.national(q, region) if any(ch.isdigit() for ch in q) else None
    if national is None and not any(ch.isalpha() for ch in q):
        national = "".join(ch for ch in q if ch.isdigit()).lstrip("0")  # part of a number
    if national is not None and len(national) >= phones.MIN_NATIONAL_DIGITS:
        # Callers give national or international forms, and may not say the country:
        # match the number's end, its national significant number (any stored form).
        return "right(g.phone_norm, length($1)) = $1", [national]
    if len(q) < 3:
        raise errors.InvalidField("Type at least 3 characters of a name.", field="q")
    return "g.name ILIKE $1", [f"%{q}%"]


async def search(deps: Deps, query: str) -> list[CustomerView]:
    where, args = _criteria(query, deps.settings.phone_region)
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
    about = [subjects.registration(reg.id)] + [subjects.reservation(r.id) for r in reservations]
    reservation_of = {r.hold_id: r.id for r in reservations}
    events = [
        _event(e, reservation_of)
        for e in await deps.pool.fetch(
            "SELECT at, kind, actor, channel, data FROM events WHERE subject = ANY($1)"
            " ORDER BY at, id",
            about,
        )
    ]
    # A hold that became a reservation: the reservation's own event says so, with who.
    events = [e for e in events if not (e.kind == "hold.confirmed" and "reservation" in e.data)]
    story = await queue_story(deps, reg.launch_id, reg.id, events)
    timeline = sorted(events + story, key=lambda e: e.at)  # stable: events keep their order
    names = history.Names(
        stores=await _names(deps, reg.launch_id, "stores"),
        skus=await _names(deps, reg.launch_id, "skus"),
        codes={r.id: format_code(r.code) for r in reservations},
        you="the customer",
        zone=await launch_zone(deps, reg.launch_id),
    )
    labels = await key_labels(deps.pool, {e.actor for e in timeline})
    return CustomerView(
        registration=reg,
        reservations=reservations,
        codes=[format_code(r.code) for r in reservations],
        pickup=[windows[r.id] for r in reservations],
        timeline=[
            msgspec.structs.replace(
                e,
                what=history.words(e, names),
                by=history.staff_word(e.actor, e.channel, reg.id, labels),
            )
            for e in timeline
        ],
    )


def _event(row: Any, reservation_of: dict[str, int]) -> TimelineEntry:
    """An event as a timeline entry. A hold event is dated when Redis saw it (its row is
    written when the sweeper drains the log, later) and names the reservation it became."""
    data = dict(row["data"])
    at = row["at"]
    if row["kind"].startswith("hold.") and isinstance(data.get("at_ms"), int):
        at = datetime.fromtimestamp(data["at_ms"] / 1000, tz=UTC)
        if data.get("hold") in reservation_of:
            data["reservation"] = reservation_of[data["hold"]]
    return TimelineEntry(
        at=at, kind=row["kind"], actor=row["actor"], channel=row["channel"], data=data
    )


async def _names(deps: Deps, launch_id: str, table: str) -> dict[str, str]:
    rows = await deps.pool.fetch(f"SELECT id, name FROM {table} WHERE launch_id = $1", launch_id)
    return {r["id"]: r["name"] for r in rows}


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
