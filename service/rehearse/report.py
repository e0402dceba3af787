"""`report.html`: one self-contained page (inline CSS and SVG, nothing fetched) saying
whether the launch held, what shoppers went through, and what a bigger one needs."""

from __future__ import annotations

import html
import json
import os
import time
from collections import Counter
from pathlib import Path

from service.rehearse import analyse, charts, sizing
from service.rehearse import measures as m
from service.rehearse.evidence import Evidence

_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:62rem;padding:1rem;color:#1b1b1b}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.2rem .6rem;text-align:left;
border-bottom:1px solid #eee;vertical-align:top}th{font-weight:600}
.ok{color:#0a6b2d;font-weight:600}.bad{color:#b00020;font-weight:600}
figure{margin:1rem 0}figcaption{color:#444;font-size:.9rem}svg{max-width:100%;height:auto}
pre{background:#f6f6f6;padding:.6rem;overflow-x:auto;font-size:.8rem}code{font-size:.9em}
"""


def _table(rows: list[tuple[str, object]]) -> str:
    body = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    return f"<table>{body}</table>"


def _verdict(summary: dict[str, object]) -> str:
    rows = []
    checks = [*analyse.INVARIANTS, "draw_rank_mismatches", "duplicate_ranks",
              "duplicate_registrations", "replayed_places_moved", "stock_mismatches"]
    for key in checks:
        value = summary.get(key)
        good = value == 0
        rows.append(f"<tr><th>{key}</th><td class={'ok' if good else 'bad'}>{value}</td></tr>")
    drawn = summary.get("draw_verified")
    mark = "ok" if drawn is not False else "bad"
    rows.append(f"<tr><th>draw_verified</th><td class={mark}>{drawn}</td></tr>")
    return f"<table>{''.join(rows)}</table>"


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _sizing(e: Evidence) -> str:
    s = sizing.sizing(e)
    if s.cpu is None:
        return (
            "<p>No CPU figures: the rehearsal ran against a target, whose processes it"
            " cannot see. Run it without <code>--target</code> on comparable machines for"
            " a sizing note.</p>"
        )
    costs = ", ".join(f"{k} {v * 1e3:.3f} ms" for k, v in s.cpu.cost.items())
    if s.cpu.unresolved:
        costs += f" ({', '.join(s.cpu.unresolved)}: too few to tell apart)"
    rows = "".join(
        f"<tr><td>{n.waiters:,}</td>"
        f"<td>{n.prequeue_polls_per_s:,.0f}/s → {n.prequeue_cores}</td>"
        f"<td>{n.start_polls_per_s:,.0f}/s → {n.start_cores}</td>"
        f"<td>{n.waiting_polls_per_s:,.0f}/s → {n.waiting_cores}</td>"
        f"<td>{n.checkin_spike_cores}</td></tr>"
        for n in s.needs
    )
    redis = (
        "<p>Redis was shared with other tenants, so its command time is not this launch's"
        " alone: no Redis figure. Run without <code>REDIS_URL</code> (embedded) or with"
        " <code>--redis-cluster</code> for one.</p>"
    )
    if s.redis is not None:
        r_costs = ", ".join(f"{k} {v:.0f} &micro;s" for k, v in s.redis.cost.items())
        cap = s.hold_capacity_per_shard
        head = f"{cap / s.admit_rate:,.0f} times the set admit rate" if cap else "unknown"
        redis = (
            f"<p>Redis command time per request ({r_costs}; fit R² {s.redis.r2}). One shard"
            " gives ~10&#8310; &micro;s of command time a second, so about"
            f" <b>{cap or 'an unknown number of'} holds a second</b>: headroom {head}"
            " (each admitted shopper holds about once).</p>"
        )
    return (
        f"<p>Worker CPU per request, fitted over {s.cpu.bins} two-second bins"
        f" (R² {s.cpu.r2}; background {s.cpu.background:.3f} cores): {costs}.</p>"
        f"<p>Waiters poll as the service asks: in the pre-queue about every"
        f" {s.prequeue_poll_s:g} s while the start is far, then once at the start, spread"
        f" over {s.start_spread_s:g} s; once in line, every ETA ÷ 10 (1 to"
        f" {s.poll_cap_s:g} s, a quarter of the admission window at most) at"
        f" {s.admit_rate:g} admissions/s. The check-in spike's busiest second held"
        f" {s.checkin_peak_share:.1%} of the crowd.</p>"
        "<table><tr><th>waiters</th><th>pre-queue polls → cores</th>"
        "<th>at the start → cores</th><th>in line polls → cores</th>"
        "<th>check-in spike cores</th></tr>"
        f"{rows}</table>"
        "<p>Cores are worker cores of this machine; add Redis, Postgres and the proxy on"
        " their own. The start is the peak: the whole pre-queue looks for the draw"
        " within those seconds.</p>" + redis
    )


def _notes(e: Evidence) -> str:
    seen = analyse.notes(e)
    if not seen:
        return "<p class=ok>None: every shopper got the answers a correct service gives.</p>"
    rows = [(k, v) for k, v in seen.most_common(40)]
    return _table([(k, f"{v} times") for k, v in rows])


def write(path: Path, e: Evidence, summary: dict[str, object]) -> None:
    started = analyse.sale_started_at(e)
    o = e.options
    replay = f"fairdrop rehearse --seed {o.seed} --shoppers {o.shoppers} --units {o.units}"
    figures = _figures(e, started)
    broken = analyse.broken_invariants(summary)
    verdict = "<span class=ok>held</span>" if not broken else "<span class=bad>broke</span>"
    when = time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(started))
    loads = [x.load for x in e.samples]
    load = (
        f" This machine's load average was {sum(loads) / len(loads):.1f} over the run"
        f" ({os.cpu_count()} cores): figures are this machine's, shared with the crowd."
        if loads else ""
    )
    launch = html.escape(e.prepared.launch_id)
    crowd = (
        f"{o.shoppers:,} shoppers and {o.bots} bots for {o.units:,} units at {o.stores}"
        f" store(s), {o.skus} SKU(s); {html.escape(o.mode)}, {o.arrival} arrival, admit rate"
        f" {o.admit_rate:g}/s"
    )
    page = f"""<!doctype html><html lang=en><meta charset=utf-8>
<meta name=viewport content="width=device-width,initial-scale=1">
<title>Rehearsal {launch}</title><style>{_CSS}</style>
<h1>Launch rehearsal: the invariants {verdict}</h1>
<p>{launch}, {when}. {crowd}.{load}
Replay: <code>{html.escape(replay)}</code> (with the same other options).</p>
<h2>Invariants</h2>{_verdict(summary)}
<h2>What shoppers saw</h2>{_seen(summary)}
<h2>Answers nobody should have had</h2>{_notes(e)}
<h2>Over the launch</h2>{"".join(figures)}
<h2>Sizing</h2>{_sizing(e)}
<h2>Summary</h2><pre>{html.escape(json.dumps(summary, indent=1))}</pre>
</html>
"""
    path.write_text(page)


def _figures(e: Evidence, started: float) -> list[str]:
    """The report's charts over the launch, each with its caption."""
    sold = analyse.sold_out_at(e)
    sold_rel = None if sold is None else sold - started
    calls, journeys = e.crowd.calls, e.crowd.journeys
    counts, times = m.admission_times(e.samples)
    pairs, errors = m.eta_errors(journeys, counts, times)
    o = e.options
    return [
        _figure(charts.queue(e.samples, started, sold_rel),
                "Checked in, the queue, how many were admitted and how many were shopping."),
        _figure(charts.stock(e.samples, started, sold_rel),
                "Units available, held and confirmed, summed over stores and SKUs."),
        _figure(charts.admit_rate(e.samples, started, o.admit_rate),
                "Admission is capped by the free units and the active cap, so it may run"
                " below the set rate."),
        _figure(charts.requests(calls, started), "Requests the crowd sent, per second."),
        _figure(charts.latency(calls), "Client-side latency, every answered request."),
        _figure(charts.latency_over_time(calls, started), "How latency moved with the load."),
        _figure(charts.statuses(calls), "Every answer by endpoint and status."),
        _figure(charts.eta(pairs, errors),
                "Each waiting poll's ETA against the wait that followed (polls once the rate"
                f" was measured, waits ≥ {m.SHORTEST_WAIT_S:g} s)."),
        _figure(charts.time_spent(analyse.phase_times(journeys)),
                "Buyers only: check-in, admitted, hold, confirm sent, confirmed."),
        _figure(charts.outcomes(dict(Counter(j.outcome for j in journeys).most_common())),
                "Each shopper's last state (the behaviour mix, and what the launch did)."),
        _figure(charts.server_cpu(e.samples, started, e.crowd_cpu),
                "Cores busy: fairdrop's processes (when it started them) and the crowd."),
    ]


def _seen(s: dict[str, object]) -> str:
    sold = s["sold_out_after_s"]
    return _table([
        ("confirmed", s["confirmed"]),
        ("the sale started", f"{s['sale_start_lag_s']} s after its scheduled time"),
        ("sold out after", "never" if sold is None else f"{sold} s"),
        ("ETA error |ETA - wait| / wait",
         f"p50 {s['eta_abs_rel_error_p50']}, p90 {s['eta_abs_rel_error_p90']}"
         f" ({s['eta_samples']} polls)"),
        ("hold latency", f"p50 {s['hold_latency_ms_p50']} ms, p99 {s['hold_latency_ms_p99']} ms"),
        ("confirm latency",
         f"p50 {s['confirm_latency_ms_p50']} ms, p99 {s['confirm_latency_ms_p99']} ms"),
        ("requests", f"{s['requests']:,}, peak {s['requests_per_s_peak']:,}/s"),
        ("answered 429", f"shoppers {s['rate_limited_shoppers']}, bots {s['rate_limited_bots']}"),
        ("5xx (other than 503) / no answer", f"{s['errors_5xx']} / {s['no_response']}"),
        ("turned away (503 + Retry-After, retried)", f"{s['turned_away_503']:,}"),
        ("shoppers who never checked in", s["never_checked_in"]),
        ("pickup", f"{s['collected']} collected ({s['desk_refused_429']} desk requests"
                   f" answered 429), {s['no_shows_released']} no-shows released"),
        ("the operator's dashboard", f"slowest answer {s['dashboard_ms_max']} ms"),
        ("the crowd's own lag",
         f"p99 {s['crowd_poll_late_s_p99']} s late against the asked poll interval;"
         f" {s['crowd_cpu_s']} CPU s"),
    ])
