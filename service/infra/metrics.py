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
Counts are tallied in memory and written every `FLUSH_SECONDS` (`_Tally`), so a
scrape may miss the other workers' last second.
What is read at scrape time (a launch's counts, the backlogs) is no multiprocess metric
but a collector the caller passes to `exposition`.
"""

from __future__ import annotations

import bisect
import math
import os
import shutil
import tempfile
from collections.abc import Iterable
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
FLUSH_SECONDS = 1.0
"""How often a worker writes its tallies where the others' scrapes read them (`flush`,
a job of every process: `service/jobs.py`)."""

_HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_CALL_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5)


class _Tally:
    """A labelled counter or histogram whose counts on the request path are kept in
    plain numbers and written to the metric in one go (`flush`). In multiprocess mode
    each write of a metric takes a lock and writes the shared file: ~2 us, three of
    them a request (a status poll costs ~50 us in all), against ~1 us for the tally."""

    def __init__(self, metric: Any, buckets: tuple[float, ...] = ()) -> None:
        self.metric = metric
        self.bounds = (*buckets, math.inf) if buckets else ()
        self.pending: dict[tuple[str, ...], list[float]] = {}

    def add(self, labels: tuple[str, ...], value: float = 1.0) -> None:
        tally = self.pending.get(labels)
        if tally is None:
            tally = self.pending[labels] = [0.0] * (len(self.bounds) + 1)
        tally[0] += value
        if self.bounds:  # a histogram: the sum, then each bucket's observations
            tally[1 + bisect.bisect_left(self.bounds, value)] += 1

    def flush(self) -> None:
        pending, self.pending = self.pending, {}
        for labels, tally in pending.items():
            child = self.metric.labels(*labels)
            if not self.bounds:
                child.inc(tally[0])
                continue
            # prometheus_client has no call for many observations: its histogram
            # child is a sum and one value per bucket (not cumulative), as observe()
            # keeps them.
            child._sum.inc(tally[0])
            for bucket, n in zip(child._buckets, tally[1:], strict=True):
                if n:
                    bucket.inc(n)


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
        self.requests = _Tally(Counter(
            "fairdrop_http_requests", "HTTP requests answered, by route and status.",
            ("route", "status"), registry=r,
        ))  # fmt: skip
        self.duration = _Tally(Histogram(
            "fairdrop_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route.",
            ("route",), buckets=_HTTP_BUCKETS, registry=r,
        ), _HTTP_BUCKETS)  # fmt: skip
        self.redis = _Tally(Histogram(
            "fairdrop_redis_call_duration_seconds",
            "Redis script calls (each, or one pipeline of several), by script.",
            ("script",), buckets=_CALL_BUCKETS, registry=r,
        ), _CALL_BUCKETS)  # fmt: skip
        self.postgres = _Tally(Histogram(
            "fairdrop_postgres_query_duration_seconds",
            "Postgres statements as the client times them, by outcome (ok, error).",
            ("outcome",), buckets=_CALL_BUCKETS, registry=r,
        ), _CALL_BUCKETS)  # fmt: skip
        self.hold_events = _Tally(Counter(
            "fairdrop_hold_events",
            "Hold events copied into the audit trail, by launch and kind"
            " (held, confirmed, expired, released, refused).",
            ("launch", "kind"), registry=r,
        ))  # fmt: skip
        self.jobs = _Tally(Counter(
            "fairdrop_job_runs", "Background job runs, by job and outcome (ok, error).",
            ("job", "outcome"), registry=r,
        ))  # fmt: skip
        self.tallies = (
            self.requests,
            self.duration,
            self.redis,
            self.postgres,
            self.hold_events,
            self.jobs,
        )

    def flush(self) -> None:
        for tally in self.tallies:
            tally.flush()


_made: _Metrics | None = None


def _metrics() -> _Metrics:
    global _made
    if _made is None or _made.pid != os.getpid():
        _made = _Metrics()
    return _made


def observe_request(route: str, status: int, seconds: float) -> None:
    m = _metrics()
    m.requests.add((route, str(status)))
    m.duration.add((route,), seconds)


def observe_redis(script: str, seconds: float) -> None:
    _metrics().redis.add((script,), seconds)


def observe_postgres(seconds: float, failed: bool) -> None:
    _metrics().postgres.add(("error" if failed else "ok",), seconds)


def count_hold_events(launch_id: str, kinds: Iterable[str]) -> None:
    tally = _metrics().hold_events
    for kind in kinds:
        tally.add((launch_id, kind))


def count_job(job: str, failed: bool) -> None:
    _metrics().jobs.add((job, "error" if failed else "ok"))


def flush() -> None:
    """Write this process's tallies where scrapes read them."""
    _metrics().flush()


def exposition(*collectors: Any) -> bytes:
    """The text a scrape gets (Prometheus text format 0.0.4): the counters and
    histograms of every worker (multiprocess mode) or of this one, then `collectors`'
    metrics."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    m = _metrics()
    m.flush()  # this worker's own counts, up to this moment
    registry = CollectorRegistry(auto_describe=False)
    if m.multiprocess:
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Forward(m.registry))
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)


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
    """A worker stops: its counts are written and stay counted; its live gauges go
    (multiprocess mode)."""
    if _made is not None and _made.pid == os.getpid():
        _made.flush()
    if _made is not None and _made.multiprocess:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
