"""The console's "new launch" form as the admin API's request: the same struct
(`LaunchCreate`), the same checks (`launches.create_launch`), its problems as
plain words per field.

A form sends text; here it becomes what the API's JSON would carry (numbers, times in
the launch's zone), and `msgspec.convert` applies the struct's constraints exactly as
decoding the API's body does. What the struct or `create_launch` refuses comes back
as `FormProblems`: a message per field, in words a person reads.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from service import errors
from service.admin import launches, timeline
from service.admin.models import TIMINGS, Launch, LaunchCreate, LaunchUpdate
from service.deps import Deps

TIME_FIELDS: tuple[str, ...] = tuple(f for f, _ in timeline.ORDER)
NUMBER_FIELDS = (
    "hold_seconds",
    "per_customer_limit",
    "registration_cap",
    "lottery_size",
    "active_cap",
    "admission_window_seconds",
)
TEXT_FIELDS = ("id", "name", "description", "fairness_mode", "time_zone")
FIELDS = (*TEXT_FIELDS, *NUMBER_FIELDS, "admit_rate", *TIME_FIELDS)
LABELS = {
    "id": "Launch id",
    "name": "Name",
    "description": "Description",
    "fairness_mode": "Queue order",
    "time_zone": "Time zone",
    "hold_seconds": "Hold seconds",
    "per_customer_limit": "Per-customer limit",
    "registration_cap": "Registration cap",
    "lottery_size": "Lottery size",
    "admit_rate": "Admit rate",
    "active_cap": "Active cap",
    "admission_window_seconds": "Admission window",
} | {f: w[0].upper() + w[1:] for f, w in timeline.WORDS.items()}
assert set(TIMINGS) <= set(TIME_FIELDS)


class FormProblems(Exception):
    """What the form's values break: field → message (None: the form as a whole)."""

    def __init__(self, problems: dict[str | None, str]) -> None:
        super().__init__("; ".join(problems.values()))
        self.problems = problems


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].rstrip("-")


def _time(raw: str, zone: str) -> datetime | str:
    """A `datetime-local` value ("2026-12-08T10:00") in the launch's zone; the text as
    given when it is no time (msgspec then says so for the field)."""
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        return raw
    if at.tzinfo is not None:
        return at
    try:
        return at.replace(tzinfo=zoneinfo.ZoneInfo(zone))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return at.replace(tzinfo=zoneinfo.ZoneInfo("UTC"))  # the zone's own error says why


def to_request(form: Mapping[str, str]) -> dict[str, Any]:
    """The API body the form's values stand for: empty fields left out (the defaults)."""
    values = {f: form.get(f, "").strip() for f in FIELDS}
    body: dict[str, Any] = {f: v for f, v in values.items() if v}
    if "id" not in body and values["name"]:
        body["id"] = _slug(values["name"])
    zone = values["time_zone"] or "UTC"
    for field in TIME_FIELDS:
        if field in body:
            body[field] = _time(body[field], zone)
    return body


_PLAIN = (
    (re.compile(r"Expected `int( \| null)?`, got `(str|float)`"), "must be a whole number"),
    (re.compile(r"Expected `float`, got `str`"), "must be a number"),
    (re.compile(r"Expected `(int|float)` >= (\S+)"), r"must be at least \2"),
    (re.compile(r"Expected `(int|float)` <= (\S+)"), r"must be at most \2"),
    (re.compile(r"Expected `str` of length >= 1"), "is required"),
    (re.compile(r"Expected `str` of length <= (\d+)"), r"must be at most \1 characters"),
    (
        re.compile(r"Expected `str` matching regex"),
        "may hold only lower-case letters, digits"
        " and hyphens, starting with a letter or digit (at most 40)",
    ),
    (re.compile(r"Expected `datetime|Invalid RFC3339"), "must be a date and time"),
    (re.compile(r"Invalid enum value"), "is not one of the choices"),
    (re.compile(r"Object missing required field `(\w+)`"), "is required"),
)
_AT = re.compile(r" - at `\$\.(\w+)`$")


def _plain(message: str) -> tuple[str | None, str]:
    """A msgspec message ("Expected `int` >= 10 - at `$.hold_seconds`") as (field,
    plain words: "Hold seconds must be at least 10")."""
    at = _AT.search(message)
    field = at.group(1) if at else None
    missing = re.search(r"missing required field `(\w+)`", message)
    field = field or (missing.group(1) if missing else None)
    text = _AT.sub("", message)
    for pattern, words in _PLAIN:
        if found := pattern.search(text):
            text = found.expand(words)
            break
    label = LABELS.get(field or "", "")
    return field, f"{label} {text}".strip() + "."


def _domain(exc: errors.InvalidRequest, body: Mapping[str, Any]) -> dict[str | None, str]:
    """An `InvalidField` from the API's checks as a message per field; the times out
    of order say which two, as `timeline.order_problems` words it."""
    times = {f: body.get(f) for f in TIME_FIELDS if isinstance(body.get(f), datetime)}
    problems: dict[str | None, str] = {}
    for earlier, later, words in timeline.order_problems(times):
        problems.setdefault(later, words[0].upper() + words[1:] + ".")
        first = timeline.WORDS[earlier]
        problems.setdefault(
            earlier, f"{first[0].upper()}{first[1:]} is set after {timeline.WORDS[later]}."
        )
    for item in exc.extra.get("errors", []):
        problems.setdefault(item["field"], item["message"])
    return problems or {None: exc.detail}


def _convert(body: dict[str, Any], into: type[Any]) -> Any:
    """`body` as the API's struct, or its problems per field."""
    try:
        return msgspec.convert(body, into, strict=False)
    except msgspec.ValidationError as exc:
        field, words = _plain(str(exc))
        raise FormProblems({field: words}) from exc
    except errors.InvalidRequest as exc:  # a check as the struct is built (zone, years)
        raise FormProblems(_domain(exc, body)) from exc


def values_of(launch: Launch) -> dict[str, str]:
    """A launch as the form's values (times in its zone, as `datetime-local` spells them)."""
    zone = zoneinfo.ZoneInfo(launch.time_zone)
    values = {f: str(getattr(launch, f)) for f in FIELDS if f not in TIME_FIELDS}
    values |= {f: "" for f in ("registration_cap", "lottery_size") if getattr(launch, f) is None}
    for field in TIME_FIELDS:
        at = getattr(launch, field)
        values[field] = at.astimezone(zone).strftime("%Y-%m-%dT%H:%M") if at else ""
    return values


async def update(
    deps: Deps, launch_id: str, form: Mapping[str, str], *, actor: str, channel: str
) -> Launch:
    """Change the launch as `PATCH /api/admin/launches/{id}` would, with the fields the
    form changed (a time or cap emptied is cleared)."""
    now = values_of(await launches.get_launch(deps, launch_id))
    changed = {f for f in FIELDS if f != "id" and form.get(f, "").strip() != now[f]}
    full = to_request(form)
    full |= {f: None for f in (*TIME_FIELDS, "registration_cap", "lottery_size") if f not in full}
    full.setdefault("description", "")
    body = {f: v for f, v in full.items() if f in changed}
    request = _convert(body, LaunchUpdate)
    try:
        return await launches.update_launch(deps, launch_id, request, actor=actor, channel=channel)
    except errors.InvalidRequest as exc:
        raise FormProblems(_domain(exc, full)) from exc
    except errors.Conflict as exc:
        words = exc.detail.replace("fairness_mode, lottery_size", "fairness_mode")
        words = words.replace("fairness_mode", "The queue order").replace(
            "lottery_size", "The lottery size"
        )
        raise FormProblems({"fairness_mode": words}) from exc


async def create(deps: Deps, form: Mapping[str, str], *, actor: str, channel: str) -> Launch:
    """Create the launch the form describes, as `POST /api/admin/launches` would."""
    body = to_request(form)
    request = _convert(body, LaunchCreate)
    try:
        return await launches.create_launch(deps, request, actor=actor, channel=channel)
    except errors.InvalidRequest as exc:
        raise FormProblems(_domain(exc, body)) from exc
    except errors.Conflict as exc:
        raise FormProblems({"id": exc.detail}) from exc
