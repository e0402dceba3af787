"""The figures a rehearsal's records give, each a plain function over them: percentiles,
per-second series, when each place in the queue was admitted, the ETA's error, and
admissions out of queue order."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence

from service.rehearse.monitor import Sample
from service.rehearse.records import Call, Journey

WAITING_STATES = ("prequeue", "waiting", "sold_out")
INVERSION_SLACK_S = 1.0
"""A shopper told to wait this long after someone behind them was told it was their
turn counts as passed over. Workers refresh admission every ~200 ms, so two of them
may disagree for a moment; a second is what the service promises."""
SHORTEST_WAIT_S = 1.0
"""ETAs are judged only against waits at least this long (polls are a second apart)."""


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0 to 100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def per_second(times: Iterable[float], t0: float, seconds: int) -> list[int]:
    """How many of `times` fall in each second from `t0` (0 .. seconds-1)."""
    bins = [0] * max(0, seconds)
    for t in times:
        i = int(t - t0)
        if 0 <= i < seconds:
            bins[i] += 1
    return bins


def admission_times(samples: Sequence[Sample]) -> tuple[list[int], list[float]]:
    """The admitted counter as the monitor saw it: (counts, times), the counts never
    falling (a worker's snapshot may lag the one before)."""
    counts: list[int] = []
    times: list[float] = []
    for s in samples:
        counts.append(max(s.admitted, counts[-1] if counts else 0))
        times.append(s.t)
    return counts, times


def admitted_at(rank: int, counts: list[int], times: list[float]) -> float | None:
    """When `rank` was admitted (the counter passed it), interpolated between the
    samples around it; None if it never was."""
    i = bisect.bisect_right(counts, rank)  # the first sample that had admitted it
    if i >= len(counts):
        return None
    if i == 0:
        return times[0]
    share = (rank + 1 - counts[i - 1]) / (counts[i] - counts[i - 1])
    return times[i - 1] + share * (times[i] - times[i - 1])


def eta_errors(
    journeys: Sequence[Journey], counts: list[int], times: list[float]
) -> tuple[list[tuple[float, float]], list[float]]:
    """(predicted, actual) seconds for every waiting poll that had an ETA and whose
    rank was later admitted, and the relative errors |predicted - actual| ÷ actual."""
    pairs: list[tuple[float, float]] = []
    for j in journeys:
        if j.rank is None:
            continue
        at = admitted_at(j.rank, counts, times)
        if at is None:
            continue
        for p in j.polls:
            if p.state != "waiting" or p.eta is None:
                continue
            actual = at - p.t
            if actual >= SHORTEST_WAIT_S:
                pairs.append((p.eta, actual))
    return pairs, [abs(pred - actual) / actual for pred, actual in pairs]


class _Counts:
    """A Fenwick tree over positions 1..n: how many were added at or below a position."""

    def __init__(self, n: int) -> None:
        self.tree = [0] * (n + 1)

    def add(self, i: int) -> None:
        while i < len(self.tree):
            self.tree[i] += 1
            i += i & -i

    def below(self, i: int) -> int:
        total = 0
        while i > 0:
            total += self.tree[i]
            i -= i & -i
        return total


def inversions(journeys: Sequence[Journey], slack: float = INVERSION_SLACK_S) -> int:
    """Pairs (a, b) with a ahead of b in the queue where a was still told to wait more
    than `slack` seconds after b was told it was b's turn."""
    ranked = [j for j in journeys if j.rank is not None]
    turns = sorted({j.admitted_at for j in ranked if j.admitted_at is not None})
    counts = _Counts(len(turns))
    total = 0
    for j in sorted(ranked, key=lambda j: j.rank or 0, reverse=True):
        told_wait = [p.t for p in j.polls if p.state in WAITING_STATES]
        if told_wait:
            total += counts.below(bisect.bisect_left(turns, max(told_wait) - slack))
        if j.admitted_at is not None:
            counts.add(bisect.bisect_left(turns, j.admitted_at) + 1)
    return total


def rank_mismatches(journeys: Sequence[Journey], order: Sequence[str] | None,
                    public_ids: dict[int, str]) -> int:
    """Shoppers whose rank is a drawn place that the published order gives someone else."""
    if not order:
        return 0
    return sum(
        1
        for j in journeys
        if j.rank is not None
        and j.rank < len(order)
        and order[j.rank] != public_ids.get(j.registration_id)
    )


def latencies(calls: Sequence[Call], kind: int, ok_only: bool = False) -> list[float]:
    return [
        c.ms for c in calls
        if c.kind == kind and c.status != 0 and (not ok_only or 200 <= c.status < 300)
    ]


def oversold_in(stock: dict[str, object] | None) -> tuple[int, int]:
    """From the admin stock endpoint: (units live above allocation in Postgres, pairs
    where Redis's available + held + confirmed is not the allocation or one is < 0)."""
    if not stock:
        return 0, 0
    postgres = stock.get("postgres", {})
    assert isinstance(postgres, dict)
    over = sum(max(0, int(live) - int(allocated)) for allocated, live in postgres.values())
    counts = stock.get("counts", [])
    assert isinstance(counts, list)
    broken = sum(
        1 for c in counts
        if c["available"] + c["held"] + c["confirmed"] != c["allocated"]
        or min(c["available"], c["held"], c["confirmed"]) < 0
    )
    return over, broken
