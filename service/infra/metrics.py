"""Prometheus metrics that add up across a deployment's workers.

Workers are separate processes. `fairdrop serve` gives them one folder
(`PROMETHEUS_MULTIPROC_DIR`, emptied at each start; `prepare_dir`) where
`prometheus_client`'s multiprocess mode keeps each process's counters and histograms in
a file of its own, so one scrape of any worker (`exposition`) reads them all. Without
that variable (an app in a test, granian run by hand) each process counts alone.

prometheus_client decides on multiprocess mode when it is first imported; the metric
objects here are made on first use in each process (`_metrics`), choosing the mode again
as the environment says then: `fairdrop serve` counts its own statements (migrations)
before it sets the variable and forks the workers.
What is read at scrape time (a launch's counts, the backlogs) is no multiprocess metric
but a collector the caller passes to `exposition`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_CALL_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5)


class _Metrics:
    """The process's metric objects (module docstring: made on first use)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, values

        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        self.pid = os.getpid()
        self.multiprocess = MULTIPROC_ENV in os.environ
        # Single-process mode: this registry is what a scrape reads. In multiprocess
        # mode the files are, and a scrape builds a registry over them.
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "fairdrop_http_requests", "HTTP requests answered, by route and status.",
            ("route", "status"), registry=r,
        )  # fmt: skip
        self.duration = Histogram(
            "fairdrop_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route.",
            ("route",), buckets=_HTTP_BUCKETS, registry=r,
        )  # fmt: skip
        self.redis = Histogram(
            "fairdrop_redis_call_duration_seconds",
            "Redis script calls (each, or one pipeline of several), by script.",
            ("script",), buckets=_CALL_BUCKETS, registry=r,
        )  # fmt: skip
        self.postgres = Histogram(
            "fairdrop_postgres_query_duration_seconds",
            "Postgres statements as the client times them, by outcome (ok, error).",
            ("outcome",), buckets=_CALL_BUCKETS, registry=r,
        )  # fmt: skip
        self.hold_events = Counter(
            "fairdrop_hold_events",
            "Hold events copied into the audit trail, by launch and kind"
            " (held, confirmed, expired, released, refused).",
            ("launch", "kind"), registry=r,
        )  # fmt: skip
        self.jobs = Counter(
            "fairdrop_job_runs", "Background job runs, by job and outcome (ok, error).",
            ("job", "outcome"), registry=r,
        )  # fmt: skip


_made: _Metrics | None = None


def _metrics() -> _Metrics:
    global _made
    if _made is None or _made.pid != os.getpid():
        _made = _Metrics()
    return _made


def observe_request(route: str, status: int, seconds: float) -> None:
    m = _metrics()
    m.requests.labels(route, str(status)).inc()
    m.duration.labels(route).observe(seconds)


def observe_redis(script: str, seconds: float) -> None:
    _metrics().redis.labels(script).observe(seconds)


def observe_postgres(seconds: float, failed: bool) -> None:
    _metrics().postgres.labels("error" if failed else "ok").observe(seconds)


def count_hold_events(launch_id: str, kinds: Iterable[str]) -> None:
    counter = _metrics().hold_events
    for kind in kinds:
        counter.labels(launch_id, kind).inc()


def count_job(job: str, failed: bool) -> None:
    _metrics().jobs.labels(job, "error" if failed else "ok").inc()


def exposition(*collectors: Any) -> tuple[bytes, str]:
    """The text a scrape gets (and its content type): the counters and histograms of
    every worker (multiprocess mode) or of this one, then `collectors`' metrics."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    m = _metrics()
    registry = CollectorRegistry(auto_describe=False)
    if m.multiprocess:
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Forward(m.registry))
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Forward:
    """Another registry's metrics, as one collector."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Any]:
        return self.registry.collect()  # type: ignore[no-any-return]


def prepare_dir(path: str | None) -> str:
    """Make `path` (a fresh temporary folder when None) the deployment's metrics folder,
    emptied of an earlier run's files, and tell the workers to come (by environment)."""
    folder = path or tempfile.mkdtemp(prefix="fairdrop-metrics-")
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        if name.endswith(".db"):
            os.remove(os.path.join(folder, name))
    os.environ[MULTIPROC_ENV] = folder
    return folder


def remove_dir(folder: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def worker_exit() -> None:
    """A worker stops: its live gauges go (multiprocess mode); its counts stay counted."""
    if _made is not None and _made.multiprocess:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
