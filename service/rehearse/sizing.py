"""What a launch of 10⁵ or 10⁶ waiters needs, from what this one cost.

The servers' CPU (and Redis's command time) is sampled twice a second; over 2-second
bins it is fitted as `background + sum of cost_k * requests_k` (least squares, costs
kept >= 0), which gives a cost per request of each kind. Waiters poll at the interval the
service asks (`service.queue.polls`), so their polls per second, and the
cores those take, follow.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import msgspec
import numpy as np

from service.queue.polls import START_SPREAD, next_poll, poll_cap, prequeue_poll
from service.rehearse.evidence import Evidence
from service.rehearse.monitor import Sample
from service.rehearse.records import KINDS, Call

BIN_S = 2.0
GROUPS: dict[str, tuple[str, ...]] = {
    "status": ("status",),
    "checkin": ("checkin",),
    "hold": ("hold", "release"),
    "confirm": ("confirm", "cancel"),
    "other": ("me", "signup", "leave"),
}
SCALES = (100_000, 1_000_000)


class Fit(msgspec.Struct, frozen=True, kw_only=True):
    cost: dict[str, float]
    """Seconds (CPU) or microseconds (Redis) per request of each group."""
    unresolved: list[str]
    """Groups sent but too few, or too mixed with others, for a cost of their own."""
    background: float
    """Per second, whatever the traffic."""
    r2: float
    bins: int

    def per_1k(self, group: str) -> float | None:
        value = self.cost.get(group)
        return None if value is None else value * 1000


def _at(samples: Sequence[Sample], value: Callable[[Sample], float | None], t: float) -> float:
    ts = [s.t for s in samples]
    vs = [value(s) or 0.0 for s in samples]
    return float(np.interp(t, ts, vs))


def fit(samples: Sequence[Sample], calls: Sequence[Call],
        value: Callable[[Sample], float | None]) -> Fit | None:
    """`value` (cumulative) per bin against the calls sent in it; None without data."""
    usable = [s for s in samples if value(s) is not None]
    if len(usable) < 8 or not calls:
        return None
    start = max(usable[0].t, calls[0].t)
    end = min(usable[-1].t, calls[-1].t)
    edges = np.arange(start, end, BIN_S)
    if len(edges) < 6:
        return None
    cumulative = np.array([_at(usable, value, t) for t in edges])
    y = np.diff(cumulative)
    group_of = {KINDS.index(k): i for i, ks in enumerate(GROUPS.values()) for k in ks}
    x = np.zeros((len(y), len(GROUPS)))
    for c in calls:
        i = int((c.t - start) // BIN_S)
        if 0 <= i < len(y) and c.kind in group_of:
            x[i, group_of[c.kind]] += 1
    keep = [k for k in range(len(GROUPS)) if x[:, k].sum() > 0]
    seen = list(keep)
    while True:
        design = np.column_stack([np.ones(len(y)), x[:, keep]])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        negative = [keep[i] for i, c in enumerate(coef[1:]) if c < 0]
        if not negative:
            break
        keep = [k for k in keep if k not in negative]  # a cost below zero is noise: drop it
    predicted = design @ coef
    spread = float(((y - y.mean()) ** 2).sum())
    r2 = 1 - float(((y - predicted) ** 2).sum()) / spread if spread > 0 else 0.0
    names = list(GROUPS)
    cost = {names[k]: float(c) for k, c in zip(keep, coef[1:], strict=True)}
    unresolved = [names[k] for k in seen if k not in keep]
    return Fit(cost=cost, unresolved=unresolved, background=float(coef[0]) / BIN_S,
               r2=round(r2, 3), bins=len(y))


def cpu_per_request(e: Evidence) -> Fit | None:
    return fit(e.samples, e.crowd.calls, lambda s: s.server_cpu_s) if e.local else None


def redis_per_request(e: Evidence) -> Fit | None:
    """Only for a Redis of the rehearsal's own: a shared one's time is others' too."""
    return fit(e.samples, e.crowd.calls, lambda s: s.redis_usec) if e.redis_owned else None


def waiting_polls_per_s(waiters: int, rate: float, cap: float) -> float:
    """Polls a second from `waiters` in line once the admit rate is measured."""
    total = 0.0
    for ahead in range(waiters):
        total += 1 / next_poll(ahead, round((ahead + 1) / rate, 1), cap)
    return total


def prequeue_interval(cap: float) -> float:
    """The pre-queue's mean interval between polls while the start is far, as asked."""
    asked = [prequeue_poll(reg, 0, None, cap) for reg in range(1, 10_001)]
    return round(sum(asked) / len(asked), 1)


class Need(msgspec.Struct, frozen=True, kw_only=True):
    waiters: int
    prequeue_polls_per_s: float
    """While the start is far."""
    start_polls_per_s: float
    """In the seconds after the start, when everyone looks for the draw."""
    waiting_polls_per_s: float
    prequeue_cores: float | None
    start_cores: float | None
    waiting_cores: float | None
    checkin_spike_cores: float | None


class Sizing(msgspec.Struct, frozen=True, kw_only=True):
    cpu: Fit | None
    redis: Fit | None
    admit_rate: float
    prequeue_poll_s: float
    start_spread_s: float
    poll_cap_s: float
    checkin_peak_share: float
    """The busiest second's arrivals (first check-ins) as a share of all shoppers."""
    needs: list[Need]
    hold_capacity_per_shard: float | None
    """Holds a second one Redis shard's command time allows (≈ one core)."""


def sizing(e: Evidence) -> Sizing:
    cpu, red = cpu_per_request(e), redis_per_request(e)
    rate = e.options.admit_rate
    cap = poll_cap(e.options.window_seconds * 1000)
    pre = prequeue_interval(cap)
    arrivals = Counter(int(j.arrived_at) for j in e.crowd.journeys if j.arrived_at)
    busiest = max(arrivals.values(), default=0)
    share = busiest / max(1, e.options.shoppers)
    needs = []
    for w in SCALES:
        pq, st, wt = w / pre, w / START_SPREAD, waiting_polls_per_s(w, rate, cap)
        poll = cpu.cost.get("status") if cpu else None
        checkin = cpu.cost.get("checkin") if cpu else None
        needs.append(Need(
            waiters=w,
            prequeue_polls_per_s=round(pq),
            start_polls_per_s=round(st),
            waiting_polls_per_s=round(wt),
            prequeue_cores=None if poll is None else round(pq * poll, 2),
            start_cores=None if poll is None else round(st * poll, 2),
            waiting_cores=None if poll is None else round(wt * poll, 2),
            checkin_spike_cores=None if checkin is None else round(share * w * checkin, 2),
        ))
    hold_us = red.cost.get("hold") if red else None
    return Sizing(
        cpu=cpu,
        redis=red,
        admit_rate=rate,
        prequeue_poll_s=pre,
        start_spread_s=START_SPREAD,
        poll_cap_s=cap,
        checkin_peak_share=round(share, 4),
        needs=needs,
        hold_capacity_per_shard=round(1e6 / hold_us) if hold_us else None,
    )
