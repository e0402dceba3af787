"""One Markdown table of benchmark results: what `docs/performance.md` shows.

`python tests/bench/run.py all --markdown` runs every bench and prints it;
`python tests/bench/run.py table FILE` renders it from saved result lines (the JSON
each bench prints last), so a table can be rebuilt without running anything again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

Result = dict[str, Any]


def _n(x: float) -> str:
    return f"{x:,.0f}"


def _rps(result: Result, measured: str, baseline: str, what: str, base: str) -> str:
    ok, rps = result[measured]["ok_rps"], result[baseline]["rps"]
    return f"{_n(ok)} {what}/s vs {_n(rps)} {base}/s"


FIGURES: dict[str, Callable[[Result], str]] = {
    "reserve": lambda r: _rps(r, "reserve", "baseline_evalsha", "holds", "bare-EVALSHA"),
    "confirm": lambda r: (
        f"{_n(r['confirm']['ok_rps'])} confirms/s vs "
        f"{_n(r['raw_asyncpg_insert']['tps'])} raw insert transactions/s"
    ),
    "poll": lambda r: _rps(r, "status", "baseline_hello", "status", "hello"),
    "poll-scale": lambda r: (
        f"{_n(r['large']['ok_rps'])} status/s with 1M waiters vs "
        f"{_n(r['small']['ok_rps'])} with 1k; server CPU ratio {r['server_cpu_ratio']}"
    ),
    "draw": lambda r: (
        f"{r['draw_s']} s to draw {_n(r['waiters'])}; "
        f"{r['redis_bytes_per_waiter']} B of Redis a waiter"
    ),
    "join": lambda r: _rps(r, "first_checkins", "baseline_evalsha", "check-ins", "bare-EVALSHA"),
    "reserve-ir": lambda r: (
        f"{_n(r['instructions_per_request']['reserve'])} instructions a hold vs "
        f"{_n(r['instructions_per_request']['evalsha'])} a bare EVALSHA; "
        f"with Redis {r['ratio_with_redis']}"
    ),
    "webhooks": lambda r: (
        f"{_n(r['delivered_per_s'])} deliveries/s ({_n(r['end_to_end_per_s'])}/s with the"
        f" fan-out) vs {_n(r['raw_posts_per_s'])} signed POSTs/s straight from httpx"
    ),
    "rebuild": lambda r: (
        f"{_n(r['units'])} units: {r['rebuild_s']} s to rebuild vs {r['read_s']} s to read; "
        f"{_n(r['redis_stock_bytes'])} B of Redis"
    ),
    "export": lambda r: (
        f"{_n(r['large']['rows'])} rows in {r['large']['seconds']} s"
        f" ({_n(r['large']['rows_per_s'])}/s), worker RSS +{r['large']['rss_rise_mb']} MB vs"
        f" {_n(r['small']['rows'])} in {r['small']['seconds']} s, +{r['small']['rss_rise_mb']} MB"
    ),
}


def _goal(result: Result) -> str:
    goal = result.get("goal")
    if goal is None:
        return "—"
    return f"≥ {goal} — {'met' if result.get('met') else 'NOT met'}"


def table(results: Iterable[Result]) -> str:
    """The Markdown table, a row per result, in the order given."""
    rows = [
        "| bench | figures | ratio | goal |",
        "|---|---|---|---|",
    ]
    for result in results:
        name = str(result["bench"])
        figures = FIGURES[name](result) if name in FIGURES else ""
        ratio = result["ratio"]
        spread = result.get("round_ratios")
        if spread:
            ratio = f"{ratio} (rounds {min(spread)} to {max(spread)})"
        rows.append(f"| {name} | {figures} | {ratio} | {_goal(result)} |")
    return "\n".join(rows)


def read_results(path: Path) -> list[Result]:
    """The result objects in `path`: one JSON object a line; other lines are skipped
    (a bench's log may be saved with them)."""
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("{"):
            found = json.loads(line)
            if isinstance(found, dict) and "bench" in found:
                out.append(found)
    return out
