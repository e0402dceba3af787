"""The launch seen from the operator's side while the crowd runs: the dashboard's
counters twice a second, and — for servers the rehearsal started — the workers' CPU
(psutil) and Redis's command time (`INFO commandstats`), for the sizing note."""

from __future__ import annotations

import contextlib
import os
import threading
import time

import httpx
import msgspec
import psutil  # type: ignore[import-untyped]  # no type information
import redis

from service.rehearse.setup import Admin
from service.rehearse.stack import Local

INTERVAL_S = 0.5


class Sample(msgspec.Struct, frozen=True, kw_only=True):
    t: float
    state: str
    checked_in: int
    queue_length: int
    admitted: int
    waiting: int
    active: int
    lapsed: int
    held: int
    confirmed: int
    available: int
    sold_out: bool
    measured_rate: float | None
    server_cpu_s: float | None = None
    """CPU the server processes have used so far (user + system)."""
    redis_usec: float | None = None
    """Microseconds Redis has spent in commands so far (all nodes)."""
    dashboard_ms: float = 0.0
    """How long the dashboard took to answer this sample."""
    load: float = 0.0
    """This machine's 1-minute load average (the crowd's, and the servers' if local)."""


class Monitor:
    def __init__(self, admin: Admin, launch_id: str, local: Local | None) -> None:
        self.admin, self.launch_id, self.local = admin, launch_id, local
        self.samples: list[Sample] = []
        self.errors: list[str] = []
        self.seed_hash: str | None = None
        """The draw's commitment, saved once registration closed (as a careful
        shopper would), for checking the published draw against."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rehearse-monitor", daemon=True)
        self._procs: list[psutil.Process] = []
        self._cpu_seen: dict[int, float] = {}
        self._redis = [redis.Redis.from_url(u) for u in local.redis_nodes] if local else []

    def __enter__(self) -> Monitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for client in self._redis:
            client.close()

    def latest(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    def _run(self) -> None:
        tick = 0
        while not self._stop.is_set():
            began = time.time()
            try:
                self.samples.append(self._sample(refresh=tick % 10 == 0))
            except (httpx.HTTPError, KeyError, ValueError, redis.RedisError) as exc:
                self.errors.append(f"{time.strftime('%H:%M:%S')} {type(exc).__name__}: {exc}")
            tick += 1
            self._stop.wait(max(0.0, INTERVAL_S - (time.time() - began)))

    def _sample(self, refresh: bool) -> Sample:
        began = time.perf_counter()
        reply = self.admin.http.get(
            f"/api/admin/launches/{self.launch_id}/dashboard", timeout=30.0
        )
        answered_ms = (time.perf_counter() - began) * 1000
        reply.raise_for_status()
        d = reply.json()
        if self.seed_hash is None and d["launch"]["state"] != "registration_open":
            self._save_commitment()
        return Sample(
            t=time.time(),
            state=d["launch"]["state"],
            checked_in=d["checked_in"],
            queue_length=d["queue_length"],
            admitted=d["admitted"],
            waiting=d["waiting"],
            active=d["active"],
            lapsed=d["lapsed"],
            held=d["held"],
            confirmed=d["confirmed"],
            available=d["available"],
            sold_out=d["sold_out"],
            measured_rate=d["measured_rate"],
            server_cpu_s=self._server_cpu(refresh) if self.local else None,
            redis_usec=self._redis_usec() if self._redis else None,
            dashboard_ms=round(answered_ms, 1),
            load=os.getloadavg()[0],
        )

    def _save_commitment(self) -> None:
        reply = self.admin.http.get(f"/api/launches/{self.launch_id}/draw", timeout=10.0)
        if reply.status_code == 200 and reply.json().get("seed") is None:
            self.seed_hash = str(reply.json()["seed_hash"])

    def _server_cpu(self, refresh: bool) -> float:
        """Cumulative CPU of the server's processes; a process that died keeps what it
        had used when last seen, and new ones (a respawned worker) are picked up."""
        assert self.local is not None
        if refresh or not self._procs:
            self._procs = self.local.server_processes()
        for proc in self._procs:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                times = proc.cpu_times()
                self._cpu_seen[proc.pid] = times.user + times.system
        return sum(self._cpu_seen.values())

    def _redis_usec(self) -> float:
        total = 0.0
        for client in self._redis:
            stats = client.info("commandstats")
            total += sum(float(v["usec"]) for v in stats.values() if isinstance(v, dict))
        return total
