"""E-mail addresses: checked, and normalised for de-duplication.

The address as typed is kept for sending; the normalised form only decides whether
two registrations are the same person.
"""

from __future__ import annotations

import re

_ADDRESS = re.compile(
    r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$"
)
_GMAIL = {"gmail.com", "googlemail.com"}


def is_valid(address: str) -> bool:
    return len(address) <= 320 and _ADDRESS.match(address.strip()) is not None


def normalize(address: str) -> str:
    """Lower case, no surrounding space, no `+tag`; Gmail dots dropped."""
    local, _, domain = address.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in _GMAIL:
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"
