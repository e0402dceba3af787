"""A customer's event timeline in plain words: what happened, when, through which channel."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from service import subjects
from service.customers.story import TimelineEntry
from service.moments import when
from service.stock.codes import format_code


class HistoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    what: str
    """What happened, in plain words ("Reservation ABCDE-FGHJK-M confirmed at Store X")."""
    by: str
    """Who did it, as the customer would say it: you, customer service, store staff, fairdrop."""
    channel: str
    kind: str
    """The event's stable kind, for programs."""


class Names(msgspec.Struct, frozen=True, kw_only=True):
    stores: dict[str, str]
    skus: dict[str, str]
    codes: dict[int, str]
    """Reservation id → its code as people read it."""
    you: str = "you"
    """The customer, as the reader calls them ("you" on their own page)."""
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    """`key:<id>` → the key's label: staff are named by it, never by the key's id."""
    zone: str = "UTC"
    """The launch's time zone: times named in an entry are given there."""


# Notification topics in the words of the e-mail's reader.
_MAILS = {
    "verify_email": "the link to confirm your e-mail address",
    "registration_confirmed": "confirmation of your registration",
    "reservation_confirmed": "your reservation code",
    "reservation_cancelled": "notice of the cancellation",
    "checkin_open": "notice that check-in is open",
    "your_turn": "notice that it was your turn",
    "hold_expiring": "a reminder that your hold was about to end",
    "hold_released": "notice that you let go of your hold",
    "pickup_reminder": "a pickup reminder",
    "not_drawn": "the result of the draw",
    "lottery_invited": "notice that you were drawn",
    "moved_up": "notice that you moved up from the waiting list",
    "reservation_no_show": "notice that your reservation was released",
}

INTERNAL_KINDS = frozenset({"customer.note"})
"""Events for staff eyes only: an agent's note is not part of the customer's story."""


def _store(n: Names, store: object) -> str:
    return n.stores.get(str(store), str(store))


def _reason(d: Mapping[str, Any]) -> str:
    reason = str(d.get("reason") or "").strip()
    return f": {reason}" if reason else ""


def _item(n: Names, d: Mapping[str, Any]) -> str:
    sku = n.skus.get(str(d.get("sku")), str(d.get("sku", "an item")))
    store = n.stores.get(str(d.get("store")), str(d.get("store", "a store")))
    return f"{sku} at {store}"


def _code(n: Names, d: Mapping[str, Any]) -> str:
    rid = d.get("reservation")
    if isinstance(rid, int) and rid in n.codes:
        return n.codes[rid]
    code = d.get("code")
    return format_code(code) if isinstance(code, str) else f"#{rid}"


def _cancelled(n: Names, d: Mapping[str, Any]) -> str:
    reason = str(d.get("reason") or "").strip()
    return f"Reservation {_code(n, d)} cancelled" + (f": {reason}" if reason else "")


def _mail(n: Names, d: Mapping[str, Any]) -> str:
    kind = str(d.get("topic", "")).removeprefix("notify.")
    return f"E-mailed {n.you} " + _MAILS.get(kind, "a message")


def _at(n: Names, iso: object) -> str:
    """An ISO time from an event's data as people read it, in the launch's zone."""
    return when(datetime.fromisoformat(iso), n.zone) if isinstance(iso, str) else "a later time"


def _admitted(n: Names, d: Mapping[str, Any]) -> str:
    until = d.get("until_ms")
    at = (
        when(datetime.fromtimestamp(until / 1000, tz=UTC), n.zone)
        if isinstance(until, int)
        else None
    )
    return f"Turn came: admitted from the queue, to place a hold until {at or 'a later time'}"


def _checked_in(n: Names, d: Mapping[str, Any]) -> str:
    rank = d.get("rank")
    if isinstance(rank, int):
        return f"Checked in at place {rank + 1:,} in the queue"
    return "Checked in to the waiting room before the sale"


_LEFT = {
    "prequeue": "Left the waiting room before the draw",
    "waiting": "Left the queue: the place went to those behind",
    "turn": "Handed back the turn without holding: the next in line was let in",
}

_WORDS: dict[str, Callable[[Names, Mapping[str, Any]], str]] = {
    "registration.created": lambda n, d: "Registered",
    "registration.imported": lambda n, d: "Registered by the organiser",
    "registration.verified": lambda n, d: "E-mail address confirmed",
    "queue.drawn": lambda n, d: (
        f"Checked in before the sale; the draw gave place {d.get('place', 0):,}"
        f" of {d.get('entrants', 0):,}"
    ),
    "queue.placed": lambda n, d: f"Checked in at place {d.get('place', 0):,} in the queue",
    "queue.checked_in": _checked_in,
    "queue.admitted": _admitted,
    "queue.lapsed": lambda n, d: (
        "Turn lapsed: no hold was placed in time, so the place went to the next in line"
    ),
    "queue.left": lambda n, d: _LEFT.get(str(d.get("from")), "Left the queue"),
    "lottery.moved_up": lambda n, d: "Moved up from the lottery's waiting list: invited",
    "customer.note": lambda n, d: f"Note: “{d.get('note', '')}”",
    "hold.held": lambda n, d: f"Held {_item(n, d)}",
    "hold.released": lambda n, d: f"Let go of the hold on {_item(n, d)}",
    "hold.expired": lambda n, d: f"The hold on {_item(n, d)} ran out",
    "hold.confirmed": lambda n, d: (
        f"Hold on {_item(n, d)} became reservation {_code(n, d)}"
        if "reservation" in d
        else f"Hold on {_item(n, d)} turned into a reservation"
    ),
    "hold.refused": lambda n, d: f"The hold on {_item(n, d)} could not be confirmed",
    "reservation.confirmed": lambda n, d: (
        f"Reservation {_code(n, d)} confirmed at "
        f"{n.stores.get(str(d.get('store')), str(d.get('store')))}"
    ),
    "reservation.cancelled": _cancelled,
    "reservation.collected": lambda n, d: (
        f"Reservation {_code(n, d)} collected at"
        f" {n.stores.get(str(d.get('store')), str(d.get('store')))}"
    ),
    "reservation.code_resent": lambda n, d: f"Asked for code {_code(n, d)} again",
    "reservation.moved": lambda n, d: (
        f"Reservation {_code(n, d)} moved from {_store(n, d.get('from_store'))}"
        f" to {_store(n, d.get('to_store'))}{_reason(d)}"
    ),
    "reservation.pickup_extended": lambda n, d: (
        f"Pickup of {_code(n, d)} extended until {_at(n, d.get('ends_at'))}{_reason(d)}"
    ),
    "reservation.booked_by_agent": lambda n, d: (
        f"Customer service booked reservation {_code(n, d)} for {n.you}{_reason(d)}"
    ),
    "reservation.no_show": lambda n, d: (
        f"Reservation {_code(n, d)} released: the pickup window ended before it was collected"
    ),
    "notification.sent": _mail,
    "notification.dropped": lambda n, d: "An e-mail to you could not be delivered",
}


def who(
    actor: str,
    channel: str,
    registration_id: int,
    labels: Mapping[str, str] | None = None,
    *,
    you: str = "you",
) -> str:
    """Who did it, in plain words: you, customer service (Phone team), store staff, …;
    a member of staff by the label of their key (`labels`), never by its id."""
    if actor == subjects.registration(registration_id):
        return you
    label = (labels or {}).get(actor)
    said = f" ({label})" if label else ""
    if channel == "phone":
        return "customer service" + said
    if channel == "store":
        return "store staff" + said
    if channel == "admin":
        return "the organiser" + said
    return "fairdrop"


def staff_word(actor: str, channel: str, registration_id: int, labels: dict[str, str]) -> str:
    """Who did it, as staff would say it: the customer, customer service (Phone team), …"""
    return who(actor, channel, registration_id, labels, you="the customer")


def words(entry: TimelineEntry, names: Names) -> str:
    """What happened, in plain words (an unknown kind reads as its name)."""
    said = _WORDS.get(entry.kind)
    return said(names, entry.data) if said else entry.kind.replace(".", " ").capitalize()


def describe(entry: TimelineEntry, names: Names, registration_id: int) -> HistoryEntry:
    return HistoryEntry(
        at=entry.at,
        what=words(entry, names),
        by=who(entry.actor, entry.channel, registration_id, names.labels),
        channel=entry.channel,
        kind=entry.kind,
    )
