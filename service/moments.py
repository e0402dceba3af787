"""A moment as people read it, with its zone: one wording for pages, e-mails and
timelines (`Fri 15 Jan 2027, 08:00 GMT`), in a launch's time zone or UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def when(at: datetime | None, zone: str = "UTC") -> str:
    """`at` in `zone` (an IANA name); "to be announced" when there is no time yet."""
    if at is None:
        return "to be announced"
    return at.astimezone(ZoneInfo(zone)).strftime("%a %-d %b %Y, %H:%M %Z")


def when_ms(ms: int | float, zone: str = "UTC") -> str:
    return when(datetime.fromtimestamp(ms / 1000, tz=UTC), zone)
