"""`GET /metrics`: the whole deployment's Prometheus metrics, from any worker.

Counters and histograms come from every worker's files (`service.infra.metrics`).
What is a state rather than a count (a launch's queue and stock, the backlogs, whether
Postgres and Redis answer) is read at scrape time, by the worker scraped, from where it
lives: the operations dashboard's numbers for each launch (`service.admin.dashboard`),
the outbox and webhook tables, the readiness checks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from litestar import Response, get
from prometheus_client.core import GaugeMetricFamily, Metric

from service.admin import dashboard as board
from service.deps import Deps
from service.infra import metrics as proc_metrics
from service.queue.status import QueueWatch
from service.web.health import backend_checks
from service.web.params import AnyRequest, AppDeps

log = logging.getLogger(__name__)

_TEXT_FORMAT = "text/plain; version=0.0.4"

# Launches whose numbers move (a draft has none yet; an archived launch no longer).
_LAUNCHES = "SELECT id FROM launches WHERE state NOT IN ('draft', 'archived') ORDER BY id"

_OUTBOX = (
    "SELECT count(*) AS pending, count(last_error) AS failing"
    " FROM outbox WHERE processed_at IS NULL"
)
_WEBHOOKS = (
    "SELECT count(*) FILTER (WHERE status = 'pending') AS pending,"
    " count(*) FILTER (WHERE status = 'pending' AND attempts > 0) AS retrying,"
    " count(*) FILTER (WHERE status = 'failed') AS failed"
    " FROM webhook_deliveries WHERE status <> 'delivered'"
)
_DISABLED = "SELECT count(*) FROM webhook_endpoints WHERE NOT enabled"

# (metric suffix, Dashboard field, help)
_LAUNCH_GAUGES = (
    ("registered", "registered", "Registrations."),
    ("verified", "verified", "Verified registrations."),
    ("checked_in", "checked_in", "Registrations checked in to the queue."),
    ("waiting", "waiting", "Places in the queue not yet admitted."),
    ("admitted", "admitted", "Places admitted so far."),
    ("active", "active", "Admitted shoppers choosing or holding."),
    ("held", "held", "Units held now."),
    ("confirmed", "confirmed", "Live reservations (confirmed, not collected)."),
    ("available", "available", "Units free to hold."),
    ("admit_rate_set", "admit_rate", "Admissions per second the operator set."),
)


class _Gathered:
    """A collector of metrics read beforehand (a collector's `collect` cannot await)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"fairdrop_{name}", doc, labels=list(labels))


async def _launch_families(deps: Deps, watch: QueueWatch | None) -> list[Metric]:
    gauges = {
        field: _gauge(f"launch_{name}", doc, ("launch",)) for name, field, doc in _LAUNCH_GAUGES
    }
    sold_out = _gauge("launch_sold_out", "1 once nothing is free or held.", ("launch",))
    selling = _gauge("launch_selling", "1 while the sale is open and not paused.", ("launch",))
    measured = _gauge(
        "launch_admit_rate", "Admissions per second as measured recently.", ("launch",)
    )
    for (launch_id,) in await deps.pool.fetch(_LAUNCHES):
        snap = watch.snapshots.get(launch_id) if watch else None
        pace = watch.pace(launch_id) if watch else None
        d = await board.dashboard(deps, launch_id, snap, pace)
        for field, family in gauges.items():
            family.add_metric([launch_id], float(getattr(d, field)))
        sold_out.add_metric([launch_id], float(d.sold_out))
        open_ = d.launch.state == "selling" and not d.launch.paused
        selling.add_metric([launch_id], float(open_))
        if d.measured_rate is not None:
            measured.add_metric([launch_id], d.measured_rate)
    return [*gauges.values(), sold_out, selling, measured]


async def _backlog_families(deps: Deps) -> list[Metric]:
    outbox = await deps.pool.fetchrow(_OUTBOX)
    hooks = await deps.pool.fetchrow(_WEBHOOKS)
    disabled = await deps.pool.fetchval(_DISABLED)
    assert outbox is not None and hooks is not None  # aggregates always return a row
    out: list[Metric] = []
    for name, value, doc in (
        ("outbox_pending", outbox["pending"], "Outbox messages not yet sent."),
        ("outbox_failing", outbox["failing"], "Unsent outbox messages whose last try failed."),
        ("webhook_pending", hooks["pending"], "Webhook deliveries not yet delivered."),
        ("webhook_retrying", hooks["retrying"], "Pending webhook deliveries tried and failed."),
        ("webhook_failed", hooks["failed"], "Webhook deliveries given up on (replayable)."),
        ("webhook_endpoints_disabled", disabled, "Webhook endpoints disabled."),
    ):
        family = _gauge(name, doc)
        family.add_metric([], float(value))
        out.append(family)
    return out


def _pool_families(deps: Deps) -> list[Metric]:
    size = _gauge("db_pool_size", "Postgres connections in the scraped worker's pool.")
    size.add_metric([], float(deps.pool.get_size()))
    idle = _gauge("db_pool_idle", "Idle Postgres connections in the scraped worker's pool.")
    idle.add_metric([], float(deps.pool.get_idle_size()))
    return [size, idle]


async def gather(deps: Deps, watch: QueueWatch | None) -> list[Metric]:
    """Everything read at scrape time; a backend that is down leaves its part out and
    says so in `fairdrop_backend_up`."""
    checks = await backend_checks(deps)
    up = _gauge("backend_up", "1 when the backend answers the scraped worker.", ("backend",))
    for backend, check in sorted(checks.items()):
        up.add_metric([backend], float(check == "ok"))
    families: list[Metric] = [up, *_pool_families(deps)]
    if checks["postgres"] == "ok":
        families += await _backlog_families(deps)
        if checks["redis"] == "ok":
            try:
                families += await _launch_families(deps, watch)
            except Exception:
                log.exception("launch metrics could not be read")
    return families


@get(
    "/metrics",
    operation_id="metrics",
    tags=["ops"],
    summary="Prometheus metrics of the whole deployment (all workers)",
    media_type=_TEXT_FORMAT,
)
async def metrics(request: AnyRequest, deps: AppDeps) -> Response[bytes]:
    watch: QueueWatch | None = request.app.state.get("watch")
    body = proc_metrics.exposition(_Gathered(await gather(deps, watch)))
    return Response(body, media_type=_TEXT_FORMAT)  # Litestar adds `; charset=utf-8`
