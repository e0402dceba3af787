"""Phone numbers, normalised for de-duplication: digits, with a leading + kept."""

from __future__ import annotations

import re

_NOT_DIGIT = re.compile(r"\D")


def normalize(phone: str) -> str | None:
    """`+44 (0)20 7946-0958` → `+442079460958`; None when there are too few digits."""
    raw = phone.strip()
    plus = raw.startswith("+") or raw.startswith("00")
    digits = _NOT_DIGIT.sub("", raw.replace("(0)", ""))
    if raw.startswith("00"):
        digits = digits[2:]
    if not 6 <= len(digits) <= 15:
        return None
    return ("+" if plus else "") + digits
