"""What other systems are told: one versioned JSON payload per event type.

Every payload is an envelope (`type`, `version`, `id`, `timestamp`, `launch_id`,
`channel`) around the type's `data`. `id` is the `webhook-id` header: the same on every
retry and replay, so a receiver that keeps the ids it has seen processes each event
once. A change that would break a receiver gets a new `version`, never a silent edit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

EventType = Literal[
    "registration.created",
    "registration.verified",
    "queue.checked_in",
    "queue.admitted",
    "queue.left",
    "hold.placed",
    "hold.released",
    "hold.expired",
    "reservation.confirmed",
    "reservation.cancelled",
    "reservation.moved",
    "reservation.collected",
    "reservation.no_show",
    "launch.state_changed",
    "launch.sold_out",
]
EVENT_TYPES: tuple[str, ...] = EventType.__args__  # type: ignore[attr-defined]


class WebhookCustomer(msgspec.Struct, frozen=True, kw_only=True):
    """The registration an event is about."""

    registration_id: int
    public_id: str
    """The pseudonymous id the published draw lists."""
    email: str
    name: str | None
    phone: str | None


class RegistrationCreatedData(msgspec.Struct, frozen=True, kw_only=True):
    customer: WebhookCustomer
    imported: bool
    """Imported by an operator (verified at once) rather than signed up."""
    verified: bool


class RegistrationVerifiedData(msgspec.Struct, frozen=True, kw_only=True):
    customer: WebhookCustomer


class CheckedInData(msgspec.Struct, frozen=True, kw_only=True):
    customer: WebhookCustomer
    place: int | None
    """Place in the queue (1 = first); null in the pre-queue, before the draw orders it."""


class AdmittedData(msgspec.Struct, frozen=True, kw_only=True):
    customer: WebhookCustomer
    turn_ends_at: datetime | None
    """Until when the customer may place a hold."""


class LeftData(msgspec.Struct, frozen=True, kw_only=True):
    customer: WebhookCustomer
    place: int | None
    """The place given up (1 = first); null from the pre-queue, before the draw ranked it."""
    stage: Literal["prequeue", "waiting", "turn"]
    """Where they left from: the pre-queue, waiting in line, or a turn they did not use."""


class HoldData(msgspec.Struct, frozen=True, kw_only=True):
    customer: WebhookCustomer
    hold_id: str
    store_id: str
    sku_id: str


class ReservationData(msgspec.Struct, frozen=True, kw_only=True):
    customer: WebhookCustomer
    reservation_id: int
    code: str
    """The pickup code (11 Crockford base32 characters)."""
    store_id: str
    sku_id: str
    status: Literal["confirmed", "cancelled", "collected", "no_show"]


class ReservationCancelledData(ReservationData, frozen=True, kw_only=True):
    reason: str


class ReservationMovedData(ReservationData, frozen=True, kw_only=True):
    from_store_id: str
    reason: str


class ReservationNoShowData(ReservationData, frozen=True, kw_only=True):
    pickup_ended_at: datetime | None


class LaunchStateData(msgspec.Struct, frozen=True, kw_only=True):
    action: Literal["advance", "pause", "resume", "close"]
    previous_state: str
    state: str
    paused: bool
    reason: str | None


class SoldOutData(msgspec.Struct, frozen=True, kw_only=True):
    reason: str | None


class WebhookEvent(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    id: str
    """The message id, as in the `webhook-id` header."""
    version: Literal[1] = 1
    timestamp: datetime
    """When it happened."""
    launch_id: str
    channel: str
    """Through which channel it came: web, app, store, phone, admin or system."""


class RegistrationCreated(WebhookEvent, frozen=True, kw_only=True, tag="registration.created"):
    """Someone registered (signed up, or was imported by an operator)."""

    data: RegistrationCreatedData


class RegistrationVerified(WebhookEvent, frozen=True, kw_only=True, tag="registration.verified"):
    """A registration's e-mail address was verified (its link followed)."""

    data: RegistrationVerifiedData


class QueueCheckedIn(WebhookEvent, frozen=True, kw_only=True, tag="queue.checked_in"):
    """A registration checked in to the waiting room (the pre-queue before the draw)."""

    data: CheckedInData


class QueueAdmitted(WebhookEvent, frozen=True, kw_only=True, tag="queue.admitted"):
    """A customer's turn came: they may place a hold until `turn_ends_at`."""

    data: AdmittedData


class QueueLeft(WebhookEvent, frozen=True, kw_only=True, tag="queue.left"):
    """A customer left the queue for good: their place, or their unused turn, went to
    the people behind them."""

    data: LeftData


class HoldPlaced(WebhookEvent, frozen=True, kw_only=True, tag="hold.placed"):
    """A unit is held for a customer until they confirm it or the hold runs out."""

    data: HoldData


class HoldReleased(WebhookEvent, frozen=True, kw_only=True, tag="hold.released"):
    """A hold was let go; its unit is back in stock."""

    data: HoldData


class HoldExpired(WebhookEvent, frozen=True, kw_only=True, tag="hold.expired"):
    """A hold ran out unconfirmed; its unit is back in stock."""

    data: HoldData


class ReservationConfirmed(WebhookEvent, frozen=True, kw_only=True, tag="reservation.confirmed"):
    """A hold became a reservation with a pickup code (committed in Postgres)."""

    data: ReservationData


class ReservationCancelled(WebhookEvent, frozen=True, kw_only=True, tag="reservation.cancelled"):
    """A reservation was cancelled (by the customer or an agent); its unit returns."""

    data: ReservationCancelledData


class ReservationMoved(WebhookEvent, frozen=True, kw_only=True, tag="reservation.moved"):
    """A reservation moved to another store (by an agent); `store_id` is the new one."""

    data: ReservationMovedData


class ReservationCollected(WebhookEvent, frozen=True, kw_only=True, tag="reservation.collected"):
    """A reservation was collected at the store's pickup desk."""

    data: ReservationData


class ReservationNoShow(WebhookEvent, frozen=True, kw_only=True, tag="reservation.no_show"):
    """A reservation was not collected in its pickup window; its unit returns."""

    data: ReservationNoShowData


class LaunchStateChanged(WebhookEvent, frozen=True, kw_only=True, tag="launch.state_changed"):
    """The launch moved in its lifecycle, or was paused or resumed."""

    data: LaunchStateData


class LaunchSoldOut(WebhookEvent, frozen=True, kw_only=True, tag="launch.sold_out"):
    """Nothing is left to sell (the launch went to `sold_out`)."""

    data: SoldOutData


PAYLOADS: dict[str, type[WebhookEvent]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in (
        RegistrationCreated,
        RegistrationVerified,
        QueueCheckedIn,
        QueueAdmitted,
        QueueLeft,
        HoldPlaced,
        HoldReleased,
        HoldExpired,
        ReservationConfirmed,
        ReservationCancelled,
        ReservationMoved,
        ReservationCollected,
        ReservationNoShow,
        LaunchStateChanged,
        LaunchSoldOut,
    )
}
"""Each event type's payload struct."""
assert set(PAYLOADS) == set(EVENT_TYPES)

AnyWebhookEvent = (
    RegistrationCreated
    | RegistrationVerified
    | QueueCheckedIn
    | QueueAdmitted
    | QueueLeft
    | HoldPlaced
    | HoldReleased
    | HoldExpired
    | ReservationConfirmed
    | ReservationCancelled
    | ReservationMoved
    | ReservationCollected
    | ReservationNoShow
    | LaunchStateChanged
    | LaunchSoldOut
)
"""What a receiver decodes a body as: `msgspec.json.decode(body, type=AnyWebhookEvent)`."""

_encoder = msgspec.json.Encoder()


def encode(event: WebhookEvent) -> str:
    return _encoder.encode(event).decode()
