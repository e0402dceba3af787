"""The rehearsal's summary: the invariants, the figures an operator asks about, and
every answer the crowd should not have had."""

from __future__ import annotations

from collections import Counter

from service.rehearse import measures as m
from service.rehearse import sizing
from service.rehearse.evidence import Evidence
from service.rehearse.records import KIND, Journey

INVARIANTS = ("oversold", "double_booked", "errors_5xx", "fairness_inversions")


def server_errors(statuses: list[int]) -> int:
    """Answers that are the service failing: a 5xx other than 503. A 503 is the service
    (or nginx in front of it) turning a request away with `Retry-After` while it is
    busy or a backend is down, which shoppers retry; the summary counts those apart."""
    return sum(1 for s in statuses if 500 <= s <= 599 and s != 503)


def sale_started_at(e: Evidence) -> float:
    """When the launch entered `selling` (its audit trail; else when the monitor first
    saw it selling; else the scheduled time)."""
    if "selling" in e.transitions:
        return e.transitions["selling"]
    for s in e.samples:
        if s.state in ("selling", "sold_out"):
            return s.t
    return e.timeline.sale_starts_at


def sold_out_at(e: Evidence) -> float | None:
    started = sale_started_at(e)
    return next((s.t for s in e.samples if s.sold_out and s.t >= started), None)


def phase_times(journeys: list[Journey]) -> dict[str, list[float]]:
    """Seconds each buyer spent waiting, choosing, holding and confirming."""
    out: dict[str, list[float]] = {"waiting": [], "choosing": [], "holding": [], "confirming": []}
    for j in journeys:
        if None in (j.checked_in_at, j.admitted_at, j.hold_at, j.confirm_sent_at, j.confirmed_at):
            continue
        assert j.checked_in_at and j.admitted_at and j.hold_at and j.confirm_sent_at
        assert j.confirmed_at
        out["waiting"].append(j.admitted_at - j.checked_in_at)
        out["choosing"].append(j.hold_at - j.admitted_at)
        out["holding"].append(j.confirm_sent_at - j.hold_at)
        out["confirming"].append(j.confirmed_at - j.confirm_sent_at)
    return out


def duplicate_registrations(e: Evidence) -> int:
    """Registrations beyond one per dup-signup bot (its variants are one person)."""
    variants = {email.strip().lower(): bot for email, bot in e.bot_emails.items()}
    made = Counter(
        variants[x] for x in (r.strip().lower() for r in e.registered_emails) if x in variants
    )
    return sum(n - 1 for n in made.values() if n > 1)


def notes(e: Evidence) -> Counter[str]:
    """Every answer that should not have been, counted by its words."""
    seen: Counter[str] = Counter()
    for j in e.crowd.journeys:
        seen.update(j.notes)
    for b in e.crowd.bots:
        seen.update(f"bot {b.kind}: {n}" for n in b.notes)
    if e.desk is not None:
        seen.update(f"desk: {n}" for n in e.desk.notes)
        seen.update(f"desk check failed: {k}" for k, ok in e.desk.checks.items() if not ok)
    seen.update(e.notes)
    seen.update(e.prepared.notes)
    seen.update(f"draw: {p}" for p in e.draw_problems)
    return seen


def summarise(e: Evidence) -> dict[str, object]:
    """`summary.json`: the run, its invariants, its latencies, and the crowd's side."""
    summary = {**_the_run(e), **_invariants(e), **_timings(e), **_the_crowd(e)}
    summary["invariants_hold"] = all(summary[k] == 0 for k in INVARIANTS) and summary[
        "draw_verified"
    ] in (True, None)
    return summary


def _the_run(e: Evidence) -> dict[str, object]:
    o, journeys = e.options, e.crowd.journeys
    started, sold = sale_started_at(e), sold_out_at(e)
    return {
        "seed": o.seed,
        "shoppers": o.shoppers,
        "units": o.units,
        "bots": o.bots,
        "mode": o.mode,
        "workers": o.workers if e.local else None,
        "through_nginx": o.through_nginx,
        "redis_cluster": o.redis_cluster,
        "rate_limits": o.rate_limits,
        "confirmed": sum(1 for j in journeys if j.confirmed_at is not None),
        "cancelled": sum(1 for j in journeys if j.cancelled_at is not None),
        "sale_start_lag_s": m.rounded(started - e.timeline.sale_starts_at),
        "sold_out_after_s": m.rounded(sold - started) if sold else None,
    }


def _invariants(e: Evidence) -> dict[str, object]:
    journeys, o = e.crowd.journeys, e.options
    over_stock, stock_broken = m.oversold_in(e.stock)
    if e.postgres is not None:
        double = e.postgres[1]
    else:
        double = sum(max(0, (j.live_at_end or 0) - o.limit) for j in journeys)
    desk = e.desk.answers.items() if e.desk else []
    desk_5xx = sum(n for k, n in desk if server_errors([int(k.rsplit(" ", 1)[-1])]))
    statuses = [c.status for c in e.crowd.calls]
    ranks = [j.rank for j in journeys if j.rank is not None]
    drawn = o.mode != "fifo"
    return {
        "oversold": max(over_stock, e.postgres[0] if e.postgres else 0),
        "double_booked": double,
        "errors_5xx": server_errors(statuses) + desk_5xx,
        "turned_away_503": statuses.count(503),
        "no_response": statuses.count(0),
        "never_checked_in": sum(
            1
            for j in journeys
            if j.arrived_at and j.checked_in_at is None and j.outcome != "not_invited"
        ),
        "fairness_inversions": m.inversions(journeys),
        "draw_rank_mismatches": m.rank_mismatches(journeys, e.draw_order, e.prepared.public_ids),
        "duplicate_ranks": len(ranks) - len(set(ranks)),
        "duplicate_registrations": duplicate_registrations(e),
        "replayed_places_moved": sum(1 for b in e.crowd.bots if len(set(b.ranks)) > 1),
        "stock_mismatches": stock_broken,
        "draw_verified": (not e.draw_problems and e.draw_order is not None) if drawn else None,
    }


def _timings(e: Evidence) -> dict[str, object]:
    calls, journeys = e.crowd.calls, e.crowd.journeys
    counts, times = m.admission_times(e.samples)
    _, errors = m.eta_errors(journeys, counts, times)
    holds = m.latencies(calls, KIND["hold"])
    confirms = m.latencies(calls, KIND["confirm"])
    first = min((c.t for c in calls), default=0)
    span = int(max((c.t for c in calls), default=sale_started_at(e)) - first)
    return {
        "eta_abs_rel_error_p50": m.rounded(m.percentile(errors, 50), 3),
        "eta_abs_rel_error_p90": m.rounded(m.percentile(errors, 90), 3),
        "eta_samples": len(errors),
        "hold_latency_ms_p50": m.rounded(m.percentile(holds, 50)),
        "hold_latency_ms_p99": m.rounded(m.percentile(holds, 99)),
        "confirm_latency_ms_p50": m.rounded(m.percentile(confirms, 50)),
        "confirm_latency_ms_p99": m.rounded(m.percentile(confirms, 99)),
        "requests": len(calls),
        "requests_per_s_peak": max(m.per_second((c.t for c in calls), first, span + 1), default=0),
    }


def _the_crowd(e: Evidence) -> dict[str, object]:
    calls, journeys = e.crowd.calls, e.crowd.journeys
    cpu = sizing.cpu_per_request(e)
    desk = e.desk.answers.items() if e.desk else []
    return {
        "rate_limited_shoppers": sum(1 for c in calls if c.status == 429 and not c.bot),
        "rate_limited_bots": sum(1 for c in calls if c.status == 429 and c.bot),
        "server_cpu_s_per_1k_polls": m.rounded(cpu.per_1k("status"), 3) if cpu else None,
        "dashboard_ms_max": max((x.dashboard_ms for x in e.samples), default=None),
        "load_average": m.rounded(sum(x.load for x in e.samples) / max(1, len(e.samples))),
        "crowd_cpu_s": round(e.crowd.cpu_s, 1),
        "crowd_poll_late_s_p99": m.rounded(
            m.percentile([p.late_s for j in journeys for p in j.polls], 99), 2
        ),
        "collected": e.desk.collected if e.desk else 0,
        "desk_refused_429": sum(n for k, n in desk if k.endswith(" 429")),
        "no_shows_released": e.desk.no_shows_released if e.desk else None,
        "outcomes": dict(Counter(j.outcome for j in journeys).most_common()),
        "unexpected_answers": dict(notes(e).most_common(20)),
    }


def broken_invariants(summary: dict[str, object]) -> list[str]:
    """The invariants a summary shows broken, in words (empty: all hold)."""
    broken = [f"{k} = {summary[k]}" for k in INVARIANTS if summary.get(k) != 0]
    if summary.get("draw_verified") is False:
        broken.append("the published draw did not verify")
    return broken
