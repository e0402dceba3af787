"""`fairdrop rehearse`: a small whole launch, and the measures it is judged by.

The rehearsal runs as the command does (a subprocess: its crowd runs under gevent),
on the test's Postgres and a Valkey of its own (the embedded one, in the test's folder:
a script another tenant runs on a shared Redis must not fail this test), with rate
limits on. A broken invariant names the seed that replays the same crowd.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from service.infra.settings import Settings
from service.rehearse import desk, measures, nginx
from service.rehearse.analyse import INVARIANTS, server_errors
from service.rehearse.desk import Pace, codes_per_desk, sample
from service.rehearse.journey import Answer, poll_again_in, retry_in
from service.rehearse.monitor import Sample
from service.rehearse.records import Journey, Poll
from service.web.ratelimit import LOOKUPS_PER_KEY

SEED = 1811
SMALL = [
    "--shoppers",
    "240",
    "--units",
    "24",
    "--stores",
    "2",
    "--skus",
    "2",
    "--bots",
    "4",
    "--admit-rate",
    "40",
    "--prequeue-seconds",
    "5",
    "--duration",
    "30",
    "--hold-seconds",
    "10",
    "--window-seconds",
    "10",
]


def test_a_small_rehearsal_keeps_every_invariant(base_settings: Settings, tmp_path: Path) -> None:
    assert base_settings.database_url is not None
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env |= {"DATABASE_URL": base_settings.database_url, "FAIRDROP_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "service",
            "rehearse",
            *SMALL,
            "--seed",
            str(SEED),
            "--out",
            str(tmp_path / "out"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    replay = f"fairdrop rehearse {' '.join(SMALL)} --seed {SEED}"
    assert done.stdout.strip(), f"no summary (replay: {replay}):\n{done.stderr[-4000:]}"
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary == json.loads((tmp_path / "out" / "summary.json").read_text())
    broken = {k: summary[k] for k in INVARIANTS if summary[k] != 0}
    assert not broken and summary["draw_verified"] is True, (
        f"invariants broken: {broken}, draw_verified={summary['draw_verified']};"
        f" replay: {replay}\n{json.dumps(summary['unexpected_answers'], indent=1)}"
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert summary["shoppers"] == 240 and summary["confirmed"] > 0
    assert 0 < summary["confirmed"] - summary["cancelled"] <= 24
    assert summary["never_checked_in"] == 0 and summary["desk_refused_429"] == 0
    assert summary["collected"] > 0
    page = Path(summary["report"]).read_text()
    assert "http://" not in page.split("<svg", 1)[0] and "<script" not in page  # offline
    titles = re.findall(r"<text[^>]*>([^<]*)</text>", page)
    for title in (
        "The queue",
        "Stock",
        "Admit rate: set vs measured",
        "Requests by endpoint",
        "Latency by endpoint (answered requests)",
        "Answers by status",
        "ETA vs the actual wait",
        "Where buyers' time went",
    ):
        assert title in titles, f"the report has no chart {title!r}"
    assert page.count("<svg") >= 10
    assert "holds a second" in page  # the sizing note's Redis part (a Valkey of its own)


def _journey(rank: int, admitted_at: float | None, told_wait_at: list[float]) -> Journey:
    j = Journey(
        index=rank, registration_id=rank + 1, behaviour="buy", rank=rank, admitted_at=admitted_at
    )
    j.polls = [Poll(t, "waiting", rank, 1, None, 1.0, 0.0) for t in told_wait_at]
    return j


def test_inversions_count_a_shopper_told_to_wait_after_someone_behind_was_admitted() -> None:
    fair = [_journey(0, 10.0, [9.0]), _journey(1, 11.0, [10.5]), _journey(2, 12.0, [11.9])]
    assert measures.inversions(fair) == 0
    # Rank 0 is still told to wait 3 s after rank 2 was told it was its turn.
    passed_over = [_journey(0, 16.0, [15.0]), _journey(1, 11.0, []), _journey(2, 12.0, [])]
    assert measures.inversions(passed_over) == 2
    # Within the slack (workers refresh apart) it is not counted.
    stale = [_journey(0, 12.5, [12.4]), _journey(1, 12.0, [])]
    assert measures.inversions(stale) == 0


def test_the_eta_is_judged_against_when_its_rank_was_admitted() -> None:
    base = {
        "state": "selling",
        "checked_in": 0,
        "queue_length": 10,
        "waiting": 0,
        "active": 0,
        "lapsed": 0,
        "held": 0,
        "confirmed": 0,
        "available": 1,
        "sold_out": False,
        "measured_rate": 1.0,
    }
    samples = [Sample(t=float(t), admitted=a, **base) for t, a in ((0, 0), (10, 5), (20, 10))]
    counts, times = measures.admission_times(samples)
    # Admitted as the counter passed 7 (reached 8): 3 of the 5 between t = 10 and 20.
    assert measures.admitted_at(7, counts, times) == 16.0
    assert measures.admitted_at(10, counts, times) is None
    j = _journey(7, None, [])
    j.polls = [Poll(6.0, "waiting", 7, 7, 5.0, 1.0, 0.0)]  # said 5 s; it took 10 s
    pairs, errors = measures.eta_errors([j], counts, times)
    assert pairs == [(5.0, 10.0)] and errors == [0.5]


def test_the_proxy_is_the_shipped_config_with_its_upstream_and_port_replaced() -> None:
    shipped = nginx.SHIPPED.read_text()
    site = nginx.site_config(shipped, "127.0.0.1:9001", 9002)
    assert "server 127.0.0.1:9001 max_fails=3 fail_timeout=10s max_conns=256;" in site
    assert "server 127.0.0.1:9001 max_fails=3 fail_timeout=10s max_conns=64;" in site
    assert site.count("server 127.0.0.1:9001") == 2  # one a budget: waiters, turns
    assert "listen 127.0.0.1:9002;" in site
    assert not re.search(r"server app\d", site) and "[::]" not in site
    kept = [
        line.strip()
        for line in shipped.splitlines()
        if "proxy_" in line or "location" in line or "keepalive" in line
    ]
    assert all(line in site for line in kept)
    with pytest.raises(ValueError):
        nginx.site_config(shipped.replace("listen 80;", ""), "127.0.0.1:1", 2)


def test_a_spike_turned_away_with_retry_after_is_retried_until_the_stop() -> None:
    shed = Answer(503, {"type": "https://fairdrop.dev/problems/unavailable"}, 4.0)
    assert retry_in(shed, first_sent=0.0, now=600.0) == 4.0
    assert retry_in(Answer(429, None, 2.0), first_sent=0.0, now=600.0) == 2.0
    # Without guidance a failure is retried for a minute, then given up.
    assert retry_in(Answer(502, None, None), first_sent=0.0, now=30.0) == 1.0
    assert retry_in(Answer(0, None, None), first_sent=0.0, now=61.0) is None
    assert retry_in(Answer(409, None, None), first_sent=0.0, now=0.0) is None


def test_a_503_is_counted_apart_from_the_services_failures() -> None:
    assert server_errors([200, 503, 503, 429, 0]) == 0
    assert server_errors([500, 502, 504, 503]) == 3


def test_the_desk_keeps_to_the_staff_limit_on_its_side() -> None:
    pace = Pace(rate=2.0, burst=30.0)
    pace.last = 0.0
    assert [pace.delay(0.0) for _ in range(30)] == [0.0] * 30  # the burst at once
    assert pace.delay(0.0) == 0.5  # then two a second
    assert pace.delay(0.5) == 0.5


def test_each_store_collects_what_its_desks_manage_at_the_limit() -> None:
    per_desk = codes_per_desk(desk.BUDGET_S)
    pace, limit = Pace(), LOOKUPS_PER_KEY  # a little under the limit
    assert pace.rate < limit.rate and pace.burst < limit.burst
    assert per_desk == int((desk.BURST + desk.RATE * desk.BUDGET_S) // 2)
    codes = {"big": [f"B{i}" for i in range(1000)], "small": [f"S{i}" for i in range(10)]}
    keys = {"big": ["k1", "k2"], "small": ["k3", "k4"]}
    chosen = sample(codes, keys, random.Random(1))
    assert len(chosen["big"]) == 2 * per_desk < 500
    assert len(chosen["small"]) == 5


def test_a_waiter_turned_away_polls_again_no_sooner_than_it_was_asked_to_poll() -> None:
    shed = Answer(503, {"type": "https://fairdrop.dev/problems/unavailable"}, 6.0)
    assert poll_again_in(shed, next_poll=15.0) == 15.0  # asked to poll every 15 s
    assert poll_again_in(shed, next_poll=2.0) == 6.0  # Retry-After is later
    assert poll_again_in(Answer(429, None, 20.0), next_poll=15.0) == 20.0
    assert poll_again_in(Answer(0, None, None), next_poll=0.0) == 1.0  # no guidance yet
