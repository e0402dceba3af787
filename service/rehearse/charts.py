"""The report's charts: matplotlib (Agg) to inline SVG, text kept as text, every axis
labelled with its unit, time in seconds from the sale's start."""

from __future__ import annotations

import io
import math
import random
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from service.rehearse import measures as m
from service.rehearse.monitor import Sample
from service.rehearse.records import KINDS, Call

plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.grid": True,
                     "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False})
SIZE = (8.0, 3.2)
SCATTER_MAX = 4000
"""Points drawn of a scatter (a sample beyond it): each is an element of the SVG."""
TIME = "seconds since the sale started"


def svg(fig: Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _figure() -> tuple[Figure, Axes]:
    fig, ax = plt.subplots(figsize=SIZE)
    return fig, ax


GAP_S = 2.0
"""Samples further apart than this (the dashboard answered slowly) break the line."""


def _series(
    samples: Sequence[Sample], t0: float, values: Sequence[float]
) -> tuple[list[float], list[float]]:
    """Time and values, with a gap (NaN) wherever the monitor has no samples."""
    xs: list[float] = []
    ys: list[float] = []
    for i, (s, v) in enumerate(zip(samples, values, strict=True)):
        if i and s.t - samples[i - 1].t > GAP_S:
            xs.append(math.nan)
            ys.append(math.nan)
        xs.append(s.t - t0)
        ys.append(v)
    return xs, ys


def _legend(ax: Axes) -> None:
    """Beside the plot, never over its lines."""
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)


def _mark(ax: Axes, at: float | None, label: str) -> None:
    if at is not None:
        ax.axvline(at, color="0.4", linestyle="--", linewidth=1)
        ax.annotate(label, (at, 1), xycoords=("data", "axes fraction"), xytext=(3, -10),
                    textcoords="offset points", fontsize=8, color="0.3")


def queue(samples: Sequence[Sample], t0: float, sold_out: float | None) -> str:
    fig, ax = _figure()
    for name, values in (
        ("checked in", [s.checked_in for s in samples]),
        ("queue length", [s.queue_length for s in samples]),
        ("waiting", [s.waiting for s in samples]),
        ("admitted (total)", [s.admitted for s in samples]),
        ("active (choosing or holding)", [s.active for s in samples]),
    ):
        ax.plot(*_series(samples, t0, values), label=name, linewidth=1.4)
    _mark(ax, sold_out, "sold out")
    ax.set(xlabel=TIME, ylabel="shoppers", title="The queue")
    _legend(ax)
    return svg(fig)


def stock(samples: Sequence[Sample], t0: float, sold_out: float | None) -> str:
    fig, ax = _figure()
    for name, values in (
        ("available", [s.available for s in samples]),
        ("held", [s.held for s in samples]),
        ("confirmed (live)", [s.confirmed for s in samples]),
    ):
        ax.plot(*_series(samples, t0, values), label=name, linewidth=1.4)
    _mark(ax, sold_out, "sold out")
    ax.set(xlabel=TIME, ylabel="units", title="Stock")
    _legend(ax)
    return svg(fig)


def admit_rate(samples: Sequence[Sample], t0: float, set_rate: float) -> str:
    fig, ax = _figure()
    drawn = [s for s in samples if s.queue_length > 0]
    ax.plot(*_series(drawn, t0, [s.measured_rate or 0 for s in drawn]),
            label="measured by the service", linewidth=1.4)
    step = [(b.t - t0, (b.admitted - a.admitted) / (b.t - a.t))
            for a, b in zip(drawn, drawn[4:], strict=False) if b.t > a.t]
    if step:
        ax.plot(*zip(*step, strict=True), label="admitted counter, 2 s slope", linewidth=1,
                alpha=0.7)
    ax.axhline(set_rate, color="C3", linestyle=":", label=f"set: {set_rate:g}/s")
    ax.set(xlabel=TIME, ylabel="admissions per second", title="Admit rate: set vs measured")
    _legend(ax)
    return svg(fig)


def requests(calls: Sequence[Call], t0: float) -> str:
    fig, ax = _figure()
    if calls:
        start = int(calls[0].t - t0) - 1
        span = int(calls[-1].t - calls[0].t) + 3
        x = range(start, start + span)
        for k, name in enumerate(KINDS):
            times = [c.t for c in calls if c.kind == k and not c.bot]
            if times:
                ax.plot(x, m.per_second(times, t0 + start, span), label=name, linewidth=1.2)
        bots = [c.t for c in calls if c.bot]
        if bots:
            ax.plot(x, m.per_second(bots, t0 + start, span), label="bots (all)", color="0.3",
                    linestyle="--", linewidth=1)
    ax.set(xlabel=TIME, ylabel="requests per second", title="Requests by endpoint")
    _legend(ax)
    return svg(fig)


def latency(calls: Sequence[Call]) -> str:
    fig, ax = _figure()
    kinds = [(k, n) for k, n in enumerate(KINDS) if m.latencies(calls, k)]
    width = 0.27
    for i, q in enumerate((50, 95, 99)):
        values = [m.percentile(m.latencies(calls, k), q) or 0 for k, _ in kinds]
        ax.bar([x + (i - 1) * width for x in range(len(kinds))], values, width, label=f"p{q}")
    ax.set_xticks(range(len(kinds)), [n for _, n in kinds])
    ax.set_yscale("log")
    ax.set(ylabel="milliseconds (log)", title="Latency by endpoint (answered requests)")
    _legend(ax)
    return svg(fig)


def latency_over_time(calls: Sequence[Call], t0: float, bin_s: int = 5) -> str:
    fig, ax = _figure()
    for name in ("status", "checkin", "hold", "confirm"):
        k = KINDS.index(name)
        bins: dict[int, list[float]] = {}
        for c in calls:
            if c.kind == k and c.status:
                bins.setdefault(int((c.t - t0) // bin_s), []).append(c.ms)
        if bins:
            xs = sorted(bins)
            ax.plot([x * bin_s for x in xs], [m.percentile(bins[x], 95) or 0.0 for x in xs],
                    label=f"{name} p95", marker=".", linewidth=1)
    ax.set_yscale("log")
    ax.set(xlabel=TIME, ylabel=f"milliseconds, p95 per {bin_s} s (log)",
           title="Latency over the launch")
    _legend(ax)
    return svg(fig)


def statuses(calls: Sequence[Call]) -> str:
    fig, ax = _figure()
    codes = sorted({c.status for c in calls})
    kinds = [k for k in range(len(KINDS)) if any(c.kind == k for c in calls)]
    totals = [sum(1 for c in calls if c.kind == k) for k in kinds]
    labels = [f"{KINDS[k]} ({n:,})" for k, n in zip(kinds, totals, strict=True)]
    left = [0.0] * len(kinds)
    for code in codes:
        share = [sum(1 for c in calls if c.kind == k and c.status == code) / n * 100
                 for k, n in zip(kinds, totals, strict=True)]
        ax.barh(labels, share, left=left, label="no answer" if code == 0 else str(code))
        left = [a + b for a, b in zip(left, share, strict=True)]
    ax.set_xlim(0, 100)
    ax.set(xlabel="share of the endpoint's answers (%)", title="Answers by status")
    _legend(ax)
    return svg(fig)


def eta(pairs: Sequence[tuple[float, float]], errors: Sequence[float]) -> str:
    fig, (left, right) = plt.subplots(1, 2, figsize=SIZE)
    if pairs:
        shown = random.Random(0).sample(list(pairs), min(len(pairs), SCATTER_MAX))
        predicted, actual = zip(*shown, strict=True)
        left.scatter(actual, predicted, s=4, alpha=0.3)
        top = max(max(predicted), max(actual))
        left.plot([0, top], [0, top], color="C3", linewidth=1, label="exact")
        left.legend(fontsize=8)
        right.hist([min(e, 3.0) for e in errors], bins=30)
    left.set(xlabel="wait that followed (s)", ylabel="ETA the service gave (s)",
             title="ETA vs the actual wait")
    right.set(xlabel="|ETA - wait| / wait (clipped at 3)", ylabel="polls",
              title="The ETA's error")
    return svg(fig)


def time_spent(phases: dict[str, list[float]]) -> str:
    fig, ax = _figure()
    names = list(phases)
    for i, q in enumerate((50, 90)):
        values = [m.percentile(phases[n], q) or 0 for n in names]
        ax.barh([y + i * 0.4 for y in range(len(names))], values, 0.4, label=f"p{q}")
    ax.set_yticks([y + 0.2 for y in range(len(names))], names)
    ax.set(xlabel="seconds", title="Where buyers' time went")
    _legend(ax)
    return svg(fig)


def outcomes(counts: dict[str, int]) -> str:
    fig, ax = _figure()
    ax.barh(list(counts), list(counts.values()))
    ax.set(xlabel="shoppers", title="How each shopper's launch ended")
    return svg(fig)


def server_cpu(samples: Sequence[Sample], t0: float, crowd: Sequence[tuple[float, float]]) -> str:
    fig, ax = _figure()
    with_cpu = [s for s in samples if s.server_cpu_s is not None]
    pairs = zip(with_cpu, with_cpu[2:], strict=False)
    used = [(b.t - t0, ((b.server_cpu_s or 0) - (a.server_cpu_s or 0)) / (b.t - a.t))
            for a, b in pairs if b.t > a.t]
    if used:
        ax.plot(*zip(*used, strict=True), label="fairdrop's processes", linewidth=1.2)
    if crowd:
        ax.plot([t - t0 for t, _ in crowd], [c for _, c in crowd], label="the crowd (Locust)",
                linewidth=1.2)
    ax.set(xlabel=TIME, ylabel="cores busy", title="CPU")
    _legend(ax)
    return svg(fig)
