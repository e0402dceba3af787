"""A whole rehearsal, phase by phase: servers (or the target), the launch, the crowd
with progress on the terminal, the sale's close, pickup day, the checks, the report."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec

from service.queue.draw import PublishedDraw, check
from service.rehearse import analyse, report, setup, stack
from service.rehearse.desk import pickup_day
from service.rehearse.evidence import Evidence
from service.rehearse.monitor import Monitor
from service.rehearse.options import Options
from service.rehearse.plan import bots, shard, shoppers
from service.rehearse.records import SPAWN_RATE, CrowdPlan, CrowdResult, Progress, Timeline

PROGRESS_S = 2.0
CROWD_EXIT_S = 60.0
"""After the stop, a crowd process gets this long to write its records."""


def say(message: str) -> None:
    print(f"[rehearse {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _target(options: Options, out: Path) -> Iterator[stack.Target]:
    if options.target is not None:
        assert options.admin_key is not None
        yield stack.Target(options.target.rstrip("/"), options.admin_key)
        return
    shape = f"{options.workers} worker(s)"
    shape += " behind nginx" if options.through_nginx else ""
    shape += " on a three-node Redis Cluster" if options.redis_cluster else ""
    say(f"starting fairdrop: {shape}")
    with stack.local_stack(options, out) as target:
        yield target


def rehearse(options: Options) -> dict[str, object]:
    """Run the rehearsal; returns the summary (also written to OUT/summary.json)."""
    out = Path(options.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    say(f"seed {options.seed} (replay with --seed {options.seed}); output in {out}")
    with _target(options, out) as target, setup.Admin(target.base_url, target.admin_key) as admin:
        evidence = _launch(options, out, target, admin)
    (out / "evidence.msgpack").write_bytes(msgspec.msgpack.encode(evidence))
    summary = analyse.summarise(evidence)
    summary["report"] = str(out / "report.html")
    report.write(out / "report.html", evidence, summary)
    (out / "summary.json").write_bytes(msgspec.json.format(msgspec.json.encode(summary)))
    return summary


def _launch(options: Options, out: Path, target: stack.Target, admin: setup.Admin) -> Evidence:
    tag = secrets.token_hex(3)
    say(f"setting up launch rehearsal-{tag}: {options.shoppers} shoppers, {options.units} units")
    began = time.time()
    prepared = setup.prepare(admin, options, tag)
    setup_s = time.time() - began
    lead = max(6.0, (options.shoppers + options.bots) / SPAWN_RATE + 4.0)
    timeline = setup.schedule(admin, prepared.launch_id, options, lead)
    plan = CrowdPlan(
        base_url=target.base_url,
        launch_id=prepared.launch_id,
        timeline=timeline,
        hold_seconds=options.hold_seconds,
        window_seconds=options.window_seconds,
        admit_rate=options.admit_rate,
        shoppers=shoppers(options, timeline, prepared.shoppers, prepared.stores, prepared.skus),
        bots=bots(options, timeline, prepared.bot_tokens, tag),
        stores=prepared.stores,
        skus=prepared.skus,
    )
    evidence = Evidence(
        options=options,
        prepared=prepared,
        timeline=timeline,
        setup_s=setup_s,
        local=target.local is not None,
        server_log=str(target.log or ""),
        redis_owned=target.local is not None and target.local.redis_owned,
        bot_emails={x: b.index for b in plan.bots for x in b.emails},
    )
    with Monitor(admin, prepared.launch_id, target.local) as monitor:
        evidence.crowd = _crowd(plan, options.crowd_processes, out, monitor, evidence.crowd_cpu)
        say("the crowd is done; closing the sale")
        if refused := setup.transition(admin, prepared.launch_id, "close"):
            evidence.notes.append(f"closing the sale was refused: {refused}")
        live = [
            (j.hold_store, j.code)
            for j in evidence.crowd.journeys
            if j.code and j.cancelled_at is None and j.hold_store
        ]
        if prepared.staff_keys and live:
            desks = sum(len(k) for k in prepared.staff_keys.values())
            say(f"pickup day: {desks} desks collect a sample of the {len(live)} reservations")
            evidence.desk = pickup_day(
                admin,
                prepared.launch_id,
                prepared.staff_keys,
                [(str(s), str(c)) for s, c in live],
                options.seed,
            )
        evidence.samples = list(monitor.samples)
        evidence.seed_hash = monitor.seed_hash
        evidence.monitor_errors = list(monitor.errors)
    _final_checks(evidence, admin, target)
    return evidence


def _final_checks(evidence: Evidence, admin: setup.Admin, target: stack.Target) -> None:
    launch_id = evidence.prepared.launch_id
    evidence.stock = admin.call("GET", f"/api/admin/launches/{launch_id}/stock")
    if evidence.options.mode != "fifo":  # first come, first served has no draw
        _check_draw(evidence, admin)
    evidence.registered_emails = [r["email"] for r in setup.registrations(admin, launch_id)]
    evidence.transitions = setup.transitions(admin, launch_id)
    evidence.notes += admin.notes
    if target.local is not None:
        evidence.postgres = stack.postgres_invariants(
            target.local, launch_id, evidence.options.limit
        )


def _check_draw(evidence: Evidence, admin: setup.Admin) -> None:
    """The published draw, checked by the code behind `fairdrop verify-draw`."""
    launch_id = evidence.prepared.launch_id
    reply = admin.send("GET", f"/api/launches/{launch_id}/draw/published")
    if reply.status_code != 200:
        evidence.draw_problems = [f"no published draw: {reply.status_code} {reply.text[:200]}"]
        return
    published = msgspec.json.decode(reply.content, type=PublishedDraw)
    evidence.draw_order = list(published.order)
    evidence.draw_problems = check(published, seed_hash=evidence.seed_hash)
    if evidence.seed_hash is None:  # the monitor's miss, not the draw's
        evidence.notes.append("the rehearsal saw no commitment before the draw to check against")


def _crowd(
    plan: CrowdPlan, processes: int, out: Path, monitor: Monitor, cpu: list[tuple[float, float]]
) -> CrowdResult:
    """Run the crowd in `processes` processes (each its share of the plan); print
    progress until they are done; merge what they recorded."""
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    latest: dict[int, Progress] = {}
    for k in range(processes):
        part = shard(plan, k, processes)
        plan_path, result_path = out / f"crowd-{k}.plan", out / f"crowd-{k}.result"
        plan_path.write_bytes(msgspec.msgpack.encode(part))
        result_path.unlink(missing_ok=True)
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.rehearse.crowd", str(plan_path), str(result_path)],
            stdout=subprocess.PIPE,
        )
        threading.Thread(target=_read_progress, args=(proc, k, latest), daemon=True).start()
        procs.append((proc, result_path))
    starts_in = plan.timeline.sale_starts_at - time.time()
    say(
        f"crowd of {len(plan.shoppers)} shoppers and {len(plan.bots)} bots in {processes}"
        f" Locust process(es); the sale starts in {starts_in:.0f} s"
    )
    try:
        _watch(procs, latest, monitor, plan.timeline, cpu)
    except KeyboardInterrupt:
        say("interrupted: stopping the crowd")
        for proc, _ in procs:
            proc.terminate()
        _watch(procs, latest, monitor, plan.timeline, cpu)
    parts = []
    for proc, result_path in procs:
        if proc.returncode != 0 or not result_path.exists():
            raise RuntimeError(f"a crowd process failed ({proc.returncode}); see its stderr")
        parts.append(msgspec.msgpack.decode(result_path.read_bytes(), type=CrowdResult))
        result_path.unlink()  # all of it goes on into evidence.msgpack
        result_path.with_suffix(".plan").unlink()
    return CrowdResult(
        calls=sorted((c for p in parts for c in p.calls), key=lambda c: c.t),
        journeys=sorted((j for p in parts for j in p.journeys), key=lambda j: j.index),
        bots=sorted((b for p in parts for b in p.bots), key=lambda b: b.index),
        cpu_s=sum(p.cpu_s for p in parts),
        wall_s=max((p.wall_s for p in parts), default=0.0),
    )


def _read_progress(proc: subprocess.Popen[bytes], k: int, latest: dict[int, Progress]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        with contextlib.suppress(msgspec.DecodeError):
            latest[k] = msgspec.json.decode(line, type=Progress)


def _watch(
    procs: list[tuple[subprocess.Popen[bytes], Path]],
    latest: dict[int, Progress],
    monitor: Monitor,
    timeline: Timeline,
    cpu: list[tuple[float, float]],
) -> None:
    deadline = timeline.stop_at + CROWD_EXIT_S
    last_requests, last_t, last_cpu = 0, time.time(), 0.0
    while any(p.poll() is None for p, _ in procs):
        if time.time() > deadline:
            for proc, _ in procs:
                proc.kill()
            break
        time.sleep(PROGRESS_S)
        now = time.time()
        requests = sum(p.requests for p in latest.values())
        errors = sum(p.errors for p in latest.values())
        away = sum(p.turned_away for p in latest.values())
        phases: dict[str, int] = {}
        for p in latest.values():
            for name, n in p.phases.items():
                phases[name] = phases.get(name, 0) + n
        sample = monitor.latest()
        state = sample.state if sample else "?"
        stock = f"available {sample.available} held {sample.held}" if sample else ""
        used = sum(p.cpu_s for p in latest.values())
        rate = (requests - last_requests) / max(1e-6, now - last_t)
        cpu.append((now, (used - last_cpu) / max(1e-6, now - last_t)))
        last_requests, last_t, last_cpu = requests, now, used
        say(
            f"{state:<19} t{now - timeline.sale_starts_at:+5.0f}s"
            f"  asleep {phases.get('asleep', 0)} waiting {phases.get('waiting', 0)}"
            f" admitted {phases.get('admitted', 0)} done {phases.get('done', 0)}"
            f"  {rate:5.0f} req/s  errors {errors} turned away {away}  {stock}"
        )
    for proc, _ in procs:
        proc.wait()
