"""What audit events are about and who did them, spelled `<kind>:<id>` here only
(`events.record`'s `subject` and `actor`; webhooks order their deliveries by subject)."""

from __future__ import annotations


def registration(registration_id: int | str) -> str:
    return f"registration:{registration_id}"


def reservation(reservation_id: int | str) -> str:
    return f"reservation:{reservation_id}"


def launch(launch_id: str) -> str:
    return f"launch:{launch_id}"
