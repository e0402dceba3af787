"""Request and response structs of launch administration."""

from __future__ import annotations

import functools
import zoneinfo
from datetime import date, datetime
from typing import Annotated, Literal, get_args

import msgspec

from service.errors import InvalidField
from service.ids import LaunchId, StoreId

ItemId = StoreId  # a store's or a SKU's id: the same shape
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Description = Annotated[str, msgspec.Meta(max_length=2000)]
HoldSeconds = Annotated[int, msgspec.Meta(ge=10, le=86400)]
Limit = Annotated[int, msgspec.Meta(ge=1, le=16)]
FairnessMode = Literal["prequeue-shuffle", "fifo", "lottery"]
LaunchState = Literal[
    "draft",
    "registration_open",
    "registration_closed",
    "checkin_open",
    "selling",
    "sold_out",
    "closed",
    "pickup",
    "archived",
]
STATES: tuple[str, ...] = get_args(LaunchState)
"""The lifecycle, in order."""
# Each timing moves the launch into the state next to it when its time comes.
TIMINGS: dict[str, str] = {
    "registration_opens_at": "registration_open",
    "registration_closes_at": "registration_closed",
    "checkin_opens_at": "checkin_open",
    "sale_starts_at": "selling",
    "sale_ends_at": "closed",
    "pickup_starts_at": "pickup",
    "archive_at": "archived",
}


YEARS = range(2000, 9999)
"""The years a time given to fairdrop may fall in. At the ends Python and Postgres part:
year 1 at +01:00 is year 0 in UTC, 9999-12-31 at -01:00 is year 10000."""


def check_years(value: date, field: str, source: str = "body") -> None:
    """`InvalidField` (422) naming `field` unless `value` falls in `YEARS`."""
    if value.year not in YEARS:
        raise InvalidField(
            f"A time must fall in the years {YEARS[0]} to {YEARS[-1]}.", field=field, source=source
        )


TimeZone = Annotated[str, msgspec.Meta(min_length=1, max_length=64, examples=["Europe/London"])]


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_zone(value: object, field: str = "time_zone") -> None:
    """`InvalidField` (422) unless `value` names an IANA time zone."""
    if isinstance(value, str) and value not in _zones() and value != "UTC":
        raise InvalidField(
            f"{value!r} is not a time zone: give its IANA name, such as Europe/London or"
            " America/New_York.",
            field=field,
        )


class BoundedTimes(msgspec.Struct):
    """A request struct whose every time falls in `YEARS` and whose `time_zone`, if it
    has one, is a real one (checked as it is decoded)."""

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if isinstance(value, date):
                check_years(value, name)
        check_zone(getattr(self, "time_zone", None))


class Timings(BoundedTimes, kw_only=True, forbid_unknown_fields=True):
    registration_opens_at: datetime | None = None
    registration_closes_at: datetime | None = None
    checkin_opens_at: datetime | None = None
    sale_starts_at: datetime | None = None
    sale_ends_at: datetime | None = None
    pickup_starts_at: datetime | None = None
    pickup_ends_at: datetime | None = None
    archive_at: datetime | None = None


Cap = Annotated[int, msgspec.Meta(ge=1, le=100_000_000)]
AdmitRate = Annotated[float, msgspec.Meta(ge=0, le=100_000)]
ActiveCap = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
WindowSeconds = Annotated[int, msgspec.Meta(ge=10, le=86400)]


class LaunchCreate(Timings, kw_only=True, forbid_unknown_fields=True):
    id: LaunchId
    name: Name
    description: Description = ""
    """Shown on the launch's public page (plain text)."""
    hold_seconds: HoldSeconds = 300
    per_customer_limit: Limit = 1
    fairness_mode: FairnessMode = "prequeue-shuffle"
    registration_cap: Cap | None = None
    """At most this many registrations (None: no cap)."""
    lottery_size: Cap | None = None
    """`lottery` mode: how many registrations the draw invites."""
    admit_rate: AdmitRate = 5.0
    """Shoppers admitted from the queue per second."""
    active_cap: ActiveCap = 500
    """At most this many admitted shoppers at once."""
    admission_window_seconds: WindowSeconds = 120
    """An admitted shopper's time to place a hold before the place lapses."""
    time_zone: TimeZone = "UTC"
    """Where the launch happens (an IANA name): pages and e-mails give its times there."""


_MaybeTime = datetime | None | msgspec.UnsetType


class LaunchUpdate(BoundedTimes, kw_only=True, forbid_unknown_fields=True):
    """Only the fields given change; a timing given as null is cleared."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    hold_seconds: HoldSeconds | msgspec.UnsetType = msgspec.UNSET
    per_customer_limit: Limit | msgspec.UnsetType = msgspec.UNSET
    fairness_mode: FairnessMode | msgspec.UnsetType = msgspec.UNSET
    registration_cap: Cap | msgspec.UnsetType | None = msgspec.UNSET
    lottery_size: Cap | msgspec.UnsetType | None = msgspec.UNSET
    admit_rate: AdmitRate | msgspec.UnsetType = msgspec.UNSET
    active_cap: ActiveCap | msgspec.UnsetType = msgspec.UNSET
    admission_window_seconds: WindowSeconds | msgspec.UnsetType = msgspec.UNSET
    time_zone: TimeZone | msgspec.UnsetType = msgspec.UNSET
    registration_opens_at: _MaybeTime = msgspec.UNSET
    registration_closes_at: _MaybeTime = msgspec.UNSET
    checkin_opens_at: _MaybeTime = msgspec.UNSET
    sale_starts_at: _MaybeTime = msgspec.UNSET
    sale_ends_at: _MaybeTime = msgspec.UNSET
    pickup_starts_at: _MaybeTime = msgspec.UNSET
    pickup_ends_at: _MaybeTime = msgspec.UNSET
    archive_at: _MaybeTime = msgspec.UNSET


class Launch(Timings, kw_only=True):
    id: str
    name: str
    description: str = ""
    state: str
    paused: bool
    hold_seconds: int
    per_customer_limit: int
    fairness_mode: str
    registration_cap: int | None
    lottery_size: int | None
    admit_rate: float
    active_cap: int
    admission_window_seconds: int
    time_zone: str
    """Where the launch happens (an IANA name): pages and e-mails give its times there."""
    created_at: datetime
    updated_at: datetime

    def __post_init__(self) -> None:
        """Read from Postgres, not a request: nothing to check."""


class ItemCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A store or a SKU."""

    id: ItemId
    name: Name


class Item(msgspec.Struct, kw_only=True):
    id: str
    name: str


MAX_ALLOCATED = 1_000_000
"""The most units one store may have of one SKU (a CHECK in Postgres too)."""


class AllocationSet(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    allocated: Annotated[int, msgspec.Meta(ge=0, le=MAX_ALLOCATED)]


class Transition(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`advance` to a later state, or `pause`, `resume`, `close`."""

    action: Literal["advance", "pause", "resume", "close"]
    to: LaunchState | None = None
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""


class RegistrationIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=320)]
    name: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    phone: Annotated[str, msgspec.Meta(max_length=40)] | None = None


class ImportProblem(msgspec.Struct, frozen=True):
    line: int
    problem: str


class ImportReport(msgspec.Struct, kw_only=True):
    created: int
    duplicates: int
    invalid: list[ImportProblem]
    duplicate_lines: list[int] = []
    """The lines not imported because that e-mail or phone is registered already (or
    comes earlier in the list)."""


class Registration(msgspec.Struct, kw_only=True):
    id: int
    public_id: str
    launch_id: str
    email: str
    name: str | None
    phone: str | None
    channel: str
    verified_at: datetime | None
    created_at: datetime


class ShopperToken(msgspec.Struct, kw_only=True):
    registration_id: int
    token: str
    expires_ms: int
