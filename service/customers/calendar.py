"""An iCalendar file (RFC 5545) with one event: a reservation's pickup window."""

from __future__ import annotations

from datetime import UTC, datetime

PRODID = "-//fairdrop//pickup//EN"
MAX_OCTETS = 75
"""Content lines longer than this are folded (RFC 5545 §3.1), not counting the CRLF."""


def escape(text: str) -> str:
    """A TEXT value (§3.3.11): backslash, semicolon, comma and newlines escaped."""
    out = text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return out.replace("\r\n", "\\n").replace("\r", "\\n").replace("\n", "\\n")


def fold(line: str) -> str:
    """One content line folded into lines of at most 75 octets, never inside a
    UTF-8 character; each continuation starts with a space (§3.1)."""
    parts: list[str] = []
    current, size = "", 0
    limit = MAX_OCTETS
    for ch in line:
        width = len(ch.encode())
        if size + width > limit:
            parts.append(current)
            current, size = "", 0
            limit = MAX_OCTETS - 1  # the leading space counts
        current += ch
        size += width
    parts.append(current)
    return "\r\n ".join(parts)


def utc(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def pickup_event(
    *,
    uid: str,
    stamp: datetime,
    starts: datetime,
    ends: datetime,
    summary: str,
    location: str,
    description: str,
    url: str | None = None,
    sequence: int = 0,
    cancelled: bool = False,
) -> str:
    """The calendar text, CRLF line ends, every line folded.

    One reservation is always the same `uid`; `sequence` counts its changes, so a
    calendar holding an older copy replaces it (a cancelled one drops it, §3.8.1.11)."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{escape(uid)}",
        f"DTSTAMP:{utc(stamp)}",
        f"SEQUENCE:{sequence}",
        f"DTSTART:{utc(starts)}",
        f"DTEND:{utc(ends)}",
        f"SUMMARY:{escape(summary)}",
        f"LOCATION:{escape(location)}",
        f"DESCRIPTION:{escape(description)}",
        *([f"URL:{url}"] if url else []),
        f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}",
        "TRANSP:TRANSPARENT",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(fold(line) + "\r\n" for line in lines)
