"""Domain errors. Each has a stable problem `type` and an HTTP status.

The web layer maps every `FairdropError` to an RFC 9457 problem response in one
place (`service.web.problems`); nothing else needs to know about HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

PROBLEM_BASE = "https://fairdrop.dev/problems/"


class FairdropError(Exception):
    """Base of every error fairdrop reports to a caller."""

    type: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Request failed"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra


class BadRequest(FairdropError):
    type = "bad-request"
    status = 400
    title = "The request could not be read"


FieldError = tuple[str | None, str, str]
"""One entry of a field error's `errors`: (field, message, source)."""


def field_errors(items: Sequence[FieldError]) -> dict[str, list[Any]]:
    """The members every field error carries: `errors` (one per field, with its message
    and where it came from: body, query, path, header; `field` is null when the body as
    a whole is wrong) and `fields` (the names)."""
    return {
        "errors": [{"field": f, "message": m, "source": s} for f, m, s in items],
        "fields": [f for f, _, _ in items if f],
    }


class InvalidRequest(FairdropError):
    """The request does not match what the endpoint takes (a type, a missing or unknown
    field, a character Postgres cannot store). 400, with `errors` and `fields`."""

    type = "invalid-request"
    status = 400
    title = "The request does not match what this endpoint takes"

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        fields: list[str] | None = None,
        source: str = "body",
        errors: Sequence[FieldError] | None = None,
        **extra: Any,
    ) -> None:
        """`field` or `fields` share `detail` as their message; `errors` gives each
        its own."""
        names = fields if fields is not None else ([field] if field else [])
        items = errors if errors is not None else [(f, detail, source) for f in names]
        super().__init__(detail, **field_errors(items), **extra)


class InvalidField(InvalidRequest):
    """Well-formed values that break a rule (times out of lifecycle order, a date in
    the past). 422, in the same shape as `InvalidRequest`: `errors` and `fields`."""

    type = "invalid-field"
    status = 422
    title = "A field has an invalid value"


class Unauthorized(FairdropError):
    type = "unauthorized"
    status = 401
    title = "Not signed in, or the sign-in is not valid"


class Forbidden(FairdropError):
    type = "forbidden"
    status = 403
    title = "This key may not do that"


class CrossOrigin(Forbidden):
    """An unsafe request a page on another site made the browser send (CSRF)."""

    type = "cross-origin-request"
    title = "A page on another site cannot do this"


class NotFound(FairdropError):
    type = "not-found"
    status = 404
    title = "No such resource"


class Conflict(FairdropError):
    type = "conflict"
    status = 409
    title = "The resource is in a state that does not allow this"


class LaunchNotSelling(FairdropError):
    type = "launch-not-selling"
    status = 409
    title = "The launch is not selling right now"


class SoldOut(FairdropError):
    type = "sold-out"
    status = 409
    title = "No unit is left at that store for that product"


class LimitReached(FairdropError):
    type = "limit-reached"
    status = 409
    title = "The per-customer limit is reached"


class HoldExpired(FairdropError):
    type = "hold-expired"
    status = 410
    title = "The hold has expired or was released"


class HoldNotFound(FairdropError):
    type = "hold-not-found"
    status = 404
    title = "No such hold"


class ConfirmRefused(FairdropError):
    type = "confirm-refused"
    status = 409
    title = "The reservation could not be recorded; the hold was released"


class AllocationTooLow(FairdropError):
    type = "allocation-too-low"
    status = 409
    title = "An allocation cannot go below the units held or confirmed"


class InvalidTransition(FairdropError):
    type = "invalid-transition"
    status = 409
    title = "The launch cannot make that transition from its current state"


class InvalidCode(FairdropError):
    type = "invalid-code"
    status = 422
    title = "The reservation code is mistyped"


class RegistrationClosed(FairdropError):
    type = "registration-closed"
    status = 409
    title = "Registration for this launch is not open"


class RegistrationFull(FairdropError):
    type = "registration-full"
    status = 409
    title = "This launch has taken all the registrations it can"


class CheckinClosed(FairdropError):
    type = "checkin-closed"
    status = 409
    title = "The waiting room of this launch is not open"


class NotAdmitted(FairdropError):
    type = "not-admitted"
    status = 403
    title = "It is not your turn yet, or your turn has lapsed"


class NotInvited(FairdropError):
    type = "not-invited"
    status = 403
    title = "This registration was not drawn in the lottery (yet)"


class LeftQueue(FairdropError):
    type = "left-queue"
    status = 409
    title = "This registration left the queue"


class AlreadyCollected(FairdropError):
    type = "already-collected"
    status = 409
    title = "This reservation was collected already"


class NotCollectable(FairdropError):
    type = "not-collectable"
    status = 409
    title = "This reservation cannot be collected"


class OutsidePickupWindow(FairdropError):
    type = "outside-pickup-window"
    status = 409
    title = "The reservation's pickup window is not open"


class TooManyRequests(FairdropError):
    type = "too-many-requests"
    status = 429
    title = "Too many requests; slow down"


class PayloadTooLarge(FairdropError):
    type = "payload-too-large"
    status = 413
    title = "The request body is too large"


class Unavailable(FairdropError):
    type = "unavailable"
    status = 503
    title = "The service is briefly unavailable; try again in a few seconds"


ALL_ERRORS: tuple[type[FairdropError], ...] = (
    BadRequest,
    InvalidRequest,
    InvalidField,
    Unauthorized,
    Forbidden,
    CrossOrigin,
    NotFound,
    Conflict,
    LaunchNotSelling,
    SoldOut,
    LimitReached,
    HoldExpired,
    HoldNotFound,
    ConfirmRefused,
    AllocationTooLow,
    InvalidTransition,
    InvalidCode,
    RegistrationClosed,
    RegistrationFull,
    CheckinClosed,
    NotAdmitted,
    NotInvited,
    LeftQueue,
    AlreadyCollected,
    NotCollectable,
    OutsidePickupWindow,
    TooManyRequests,
    PayloadTooLarge,
    Unavailable,
)
