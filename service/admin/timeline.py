"""A launch's timings as rules: their order, and which state the clock moves a launch to.

Pure functions over the times (field name → datetime or None), so the API, the
scheduler and the console apply the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from service import errors
from service.admin.models import STATES, TIMINGS

Times = Mapping[str, datetime | None]

# The timings in lifecycle order; True where a time must come strictly after the one
# before it (the same moment is fine elsewhere: check-in may open as registration closes).
ORDER: tuple[tuple[str, bool], ...] = (
    ("registration_opens_at", False),
    ("registration_closes_at", True),
    ("checkin_opens_at", False),
    ("sale_starts_at", False),
    ("sale_ends_at", True),
    ("pickup_starts_at", False),
    ("pickup_ends_at", True),
    ("archive_at", False),
)
WORDS = {
    "registration_opens_at": "registration opens",
    "registration_closes_at": "registration closes",
    "checkin_opens_at": "check-in opens",
    "sale_starts_at": "the sale starts",
    "sale_ends_at": "the sale ends",
    "pickup_starts_at": "pickup starts",
    "pickup_ends_at": "pickup ends",
    "archive_at": "the launch is archived",
}


def order_problems(times: Times) -> list[tuple[str, str, str]]:
    """Each set timing out of lifecycle order with the set timing before it, as
    (earlier field, later field, plain words); empty when they are in order. Unset
    timings are skipped: the comparison is strict if any step between is."""
    problems = []
    previous: tuple[str, datetime] | None = None
    strict = False
    for field, after in ORDER:
        strict = strict or after
        at = times.get(field)
        if at is None:
            continue
        if previous is not None:
            earlier, before = previous
            if at < before or (strict and at == before):
                how = "after" if strict else "no earlier than"
                problems.append((earlier, field, f"{WORDS[field]} must be {how} {WORDS[earlier]}"))
        previous, strict = (field, at), False
    return problems


def check_order(times: Times) -> None:
    """Raise `InvalidField` (422) naming the timings out of lifecycle order."""
    problems = order_problems(times)
    if not problems:
        return
    named = {f for p in problems for f in p[:2]}
    raise errors.InvalidField(
        f"The launch's times are out of order: {'; '.join(p[2] for p in problems)}."
        " They follow the lifecycle: registration opens, registration closes, check-in"
        " opens, the sale starts, the sale ends, pickup starts, pickup ends.",
        fields=[f for f, _ in ORDER if f in named],
    )


# The states the clock walks through, in order (`sold_out` follows the stock, not time).
_STEPS = tuple(s for s in STATES if s != "sold_out")
_AT: dict[str, str] = {state: field for field, state in TIMINGS.items()}


def next_step(state: str, times: Times, now: datetime) -> str | None:
    """The state the clock moves a launch in `state` to next, or None.

    One step at a time, so each phase's work is done on the way (the commitment as
    registration closes, the draw as the sale starts): the next state is entered when
    its own time has come, or when a later state's time has and every state before it
    may be passed. A state whose time is unset may be passed, except the sale: it
    starts at its own time or by hand, so the clock never skips it."""
    here = _STEPS.index("selling" if state == "sold_out" else state)

    def come(s: str) -> bool:
        at = times.get(_AT[s]) if s in _AT else None
        return at is not None and at <= now

    def passable(s: str) -> bool:
        return come(s) or (times.get(_AT.get(s, "")) is None and s != "selling")

    for target in range(len(_STEPS) - 1, here, -1):
        if come(_STEPS[target]) and all(passable(s) for s in _STEPS[here + 1 : target]):
            return _STEPS[here + 1]
    return None


def step_towards(state: str, target: str) -> str | None:
    """The next state on the way from `state` to a later `target` (the target itself
    when it is next), or None when `target` is not ahead on the clock's path."""
    here = _STEPS.index("selling" if state == "sold_out" else state)
    if target not in _STEPS or _STEPS.index(target) <= here:
        return None
    return _STEPS[here + 1]
