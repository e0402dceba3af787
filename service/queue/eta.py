"""How long until a place in the queue is admitted, from what admission has achieved.

Admission runs at the operator's rate only while nothing holds it back; when the
active cap or the stock does, people are let in as places free up, often in bursts,
and the pace changes as a launch goes on (fast while units are free, a trickle once
they are sold and only returns are let in). So the rate is measured from the admitted
counter itself, over its recent changes: from a change at least 15 s and 20
admissions before the last one (so a burst is measured against the gap before it),
never more than a minute back. An estimate counts from the last admission, not from
now: while nothing is admitted the expected time stays where it was instead of
stretching.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import msgspec

SPAN_MS = 60_000
"""How far back admission is measured at most."""
RECENT_MS = 15_000
RECENT_N = 20
"""Admission is measured from the latest change at least this long and this many
admissions before the last change."""
MIN_SPAN_MS = 1_000
"""Less than this is not yet a measurement."""


class Pace(msgspec.Struct, frozen=True):
    per_second: float
    """Admissions per second over the span measured."""
    at_ms: int
    """When the counter last moved (or now, once it has stood still a whole span)."""
    admitted: int
    """The counter then."""


def measure(
    times: Sequence[int], counts: Sequence[int], now_ms: int, since_ms: int, set_rate: float
) -> Pace | None:
    """Admission's pace from the counter's history (`times[i]`: when it became
    `counts[i]`, oldest first), counting only since `since_ms` (when admission started
    or its settings last changed), never above the set rate. None until measured."""
    if not counts or set_rate <= 0:
        return None
    last_ms, last = times[-1], counts[-1]
    # Stood still a whole span: admission has stopped, and the pace says so.
    end = now_ms if now_ms - last_ms > SPAN_MS else last_ms
    floor = max(end - SPAN_MS, since_ms, times[0])
    # The latest change far enough back in both time and admissions.
    i = min(
        bisect.bisect_right(times, end - RECENT_MS), bisect.bisect_right(counts, last - RECENT_N)
    ) - 1
    if i >= 0 and times[i] >= floor:
        start, base = times[i], counts[i]
    else:
        start, base = floor, counts[max(0, bisect.bisect_right(times, floor) - 1)]
    if end - start < MIN_SPAN_MS or last <= base:
        return None
    rate = min(set_rate, (last - base) * 1000 / (end - start))
    return Pace(per_second=rate, at_ms=end, admitted=last)


def eta_seconds(pace: Pace | None, rank: int, now_ms: int) -> float | None:
    """Seconds until `rank` is admitted at `pace`: counted from the last admission,
    and never less than what those still ahead take from now."""
    if pace is None:
        return None
    ahead = max(0, rank - pace.admitted)
    due_ms = pace.at_ms + (ahead + 1) * 1000 / pace.per_second
    return round(max((due_ms - now_ms) / 1000, ahead / pace.per_second), 1)
