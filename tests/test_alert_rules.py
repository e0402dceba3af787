"""The shipped alert rules and Grafana dashboard name only metrics the app exports.

The app is scraped for real (`GET /metrics`, with a launch so its gauges are there);
each PromQL expression is reduced to its metric names by dropping strings, label
matchers, ranges, grouping clauses, functions and keywords.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from litestar.testing import AsyncTestClient

from service.deps import Deps
from tests.serve import selling_launch

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "fairdrop.json"

# Prometheus's own series, there for any scrape target.
PROMETHEUS = {"up"}
WORDS = {
    "sum", "min", "max", "avg", "count", "rate", "irate", "increase", "delta", "deriv",
    "histogram_quantile", "by", "without", "and", "or", "unless", "on", "ignoring",
    "group_left", "group_right", "bool", "offset", "absent", "clamp_min", "label_values",
}  # fmt: skip
_SUFFIXES = {"histogram": ("_bucket", "_count", "_sum"), "counter": ("",), "gauge": ("",)}


def metric_names(expr: str) -> set[str]:
    """The metric names `expr` reads."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings (label values)
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\$\w+", "", expr)  # Grafana's variables
    tokens = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr))
    if expr.strip().startswith("label_values"):  # label_values(metric, label)
        tokens -= {expr.rsplit(",", 1)[-1].strip(" )")}
    return tokens - WORDS


def exported(text: str) -> set[str]:
    """Every series name an exposition offers, by its `# TYPE` lines."""
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        names |= {name + suffix for suffix in _SUFFIXES[kind]}
    return names


def _rule_exprs() -> list[tuple[str, str]]:
    rules = yaml.safe_load(RULES.read_text())
    return [(r["alert"], r["expr"]) for g in rules["groups"] for r in g["rules"]]


def _dashboard_exprs() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    out = [(p["title"], t["expr"]) for p in board["panels"] for t in p.get("targets", [])]
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            out.append((var["name"], var["query"]["query"]))
    return out


@pytest.fixture
async def scraped(deps: Deps, client: AsyncTestClient[Any]) -> set[str]:
    await selling_launch(deps, "alerted", registrations=1)
    r = await client.get("/metrics")
    assert r.status_code == 200
    return exported(r.text)


def test_metric_names_are_read_off_expressions() -> None:
    expr = 'sum by (launch) (rate(a_total{kind="x"}[5m])) > 3 * max(b) and up{job="f"} == 0'
    assert metric_names(expr) == {"a_total", "b", "up"}
    assert metric_names("label_values(c, launch)") == {"c"}


def test_the_alert_rules_use_only_exported_metrics(scraped: set[str]) -> None:
    exprs = _rule_exprs()
    assert {"FairdropServerErrors", "FairdropAdmissionStalled", "FairdropRedisDown"} <= {
        a for a, _ in exprs
    }
    for alert, expr in exprs:
        names = metric_names(expr)
        assert names, alert
        assert names <= scraped | PROMETHEUS, (alert, sorted(names - scraped - PROMETHEUS))


def test_the_dashboard_uses_only_exported_metrics(scraped: set[str]) -> None:
    for title, expr in _dashboard_exprs():
        names = metric_names(expr)
        assert names, title
        assert names <= scraped, (title, sorted(names - scraped))


def test_promtool_reads_the_rules_and_the_dashboards_queries(tmp_path: Path) -> None:
    """Prometheus's own checker (Debian's `prometheus` package) parses every rule and,
    as recording rules, every dashboard query; skipped where it is not installed."""
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("FAIRDROP_REQUIRE_PROMTOOL") == "1":
            pytest.fail("FAIRDROP_REQUIRE_PROMTOOL=1 but no promtool on PATH")
        pytest.skip("no promtool on PATH (apt-get install prometheus)")
    queries = [
        {"record": f"dashboard:query{i}", "expr": re.sub(r"\$__rate_interval", "5m", e)}
        for i, (_, e) in enumerate(_dashboard_exprs())
        if not e.startswith("label_values")
    ]
    for rule in queries:
        rule["expr"] = rule["expr"].replace("$launch", ".*")
    board = tmp_path / "dashboard.yml"
    board.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": queries}]}))
    for path in (RULES, board):
        checked = subprocess.run(
            [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
