"""The crowd: the plan's shoppers and bots as Locust users, in a process of its own.

`python -m service.rehearse.crowd PLAN RESULT` reads a `CrowdPlan` (msgpack), walks
every journey with Locust's local runner (gevent, `FastHttpUser`, one connection per
user), prints a `Progress` line on stdout each second, and writes a `CrowdResult` to
RESULT. It never shares a process with asyncio code: gevent patches the process's
sockets and sleeps (importing Locust does it), which asyncio does not survive.

Measured on the development machine (one core, a static endpoint behind nginx):
10,000 users polling every 10 s cost 46 % of a core, every 5 s (2,000 requests/s)
all of it; every 2 s they fell behind (2,300 requests/s, polls late by ~9 s).
See docs/rehearsal.md.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import sys
import time
from pathlib import Path

import gevent
import msgspec
import psutil  # type: ignore[import-untyped]  # no type information
from locust import FastHttpUser, constant, task
from locust.env import Environment
from locust.exception import StopUser

from service.rehearse.bots import Botting
from service.rehearse.journey import Answer, Shop
from service.rehearse.records import (
    KIND,
    SPAWN_RATE,
    BotResult,
    Call,
    CrowdPlan,
    CrowdResult,
    Journey,
    Progress,
)

GRACE_S = 5.0
"""After the stop, in-flight requests get this long before the users are ended."""
PHASES = {
    "not_arrived": "asleep",
    "checking_in": "waiting",
    "waiting": "waiting",
    "choosing": "admitted",
    "holding": "admitted",
    "confirming": "admitted",
    "keeping": "admitted",
}
_encode = msgspec.json.Encoder().encode


class Crowd:
    """Everything the process's users share: the plan, the journeys, the calls."""

    def __init__(self, plan: CrowdPlan) -> None:
        self.plan = plan
        self.stop_at = plan.timeline.stop_at
        self.journeys = [Journey(index=s.index, registration_id=s.registration_id,
                                 behaviour=s.behaviour) for s in plan.shoppers]
        self.bots = [BotResult(index=b.index, kind=b.kind) for b in plan.bots]
        self.calls: list[Call] = []
        self.errors = 0
        self.turned_away = 0
        self.finished = 0
        self._next_shopper = 0
        self._next_bot = 0

    def take_shopper(self) -> int | None:
        i = self._next_shopper
        self._next_shopper += 1
        return i if i < len(self.plan.shoppers) else None

    def take_bot(self) -> int | None:
        i = self._next_bot
        self._next_bot += 1
        return i if i < len(self.plan.bots) else None

    def progress(self, cpu_s: float) -> Progress:
        phases = {"asleep": 0, "waiting": 0, "admitted": 0, "done": 0}
        for j in self.journeys:
            phases[PHASES.get(j.outcome, "done")] += 1
        return Progress(t=time.time(), phases=phases, requests=len(self.calls),
                        errors=self.errors, turned_away=self.turned_away, cpu_s=cpu_s)


class _Http:
    """`journey.Client` over one Locust user's connection."""

    def __init__(self, user: FastHttpUser, crowd: Crowd) -> None:
        self.user, self.crowd = user, crowd

    @property
    def stop_at(self) -> float:
        return self.crowd.stop_at

    @stop_at.setter
    def stop_at(self, value: float) -> None:
        self.crowd.stop_at = value

    def call(
        self, kind: str, method: str, path: str, *, token: str | None, address: str,
        body: object | None = None, bot: bool = False,
    ) -> Answer:
        headers = {"X-Forwarded-For": address, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        sent, began = time.time(), time.perf_counter()
        with self.user.client.request(
            method, path, headers=headers, json=body, name=kind, catch_response=True
        ) as reply:
            reply.success()  # the rehearsal judges answers itself
            status = int(reply.status_code or 0)
            raw = reply.content or b""
            kind_header = reply.headers.get("content-type", "") if reply.headers else ""
            retry = reply.headers.get("retry-after") if reply.headers else None
        ms = (time.perf_counter() - began) * 1000
        self.crowd.calls.append(Call(sent, KIND[kind], status, round(ms, 2), bot))
        if status == 503:
            self.crowd.turned_away += 1
        elif status == 0 or status >= 500:
            self.crowd.errors += 1
        decoded: object = None
        if raw and "json" in kind_header:
            with contextlib.suppress(msgspec.DecodeError):
                decoded = msgspec.json.decode(raw)
        try:
            retry_after = float(retry) if retry else None
        except ValueError:
            retry_after = None
        return Answer(status, decoded, retry_after)


_crowd: Crowd | None = None


class _User(FastHttpUser):
    abstract = True
    wait_time = constant(0)
    concurrency = 1
    connection_timeout = 10.0
    network_timeout = 30.0

    def crowd(self) -> Crowd:
        assert _crowd is not None
        return _crowd


class ShopperUser(_User):
    @task
    def walk(self) -> None:
        crowd = self.crowd()
        i = crowd.take_shopper()
        if i is None:
            raise StopUser()
        journey = crowd.journeys[i]
        try:
            Shop(_Http(self, crowd), crowd.plan, crowd.plan.shoppers[i], journey).run()
            if journey.outcome in PHASES and journey.outcome != "not_arrived":
                journey.outcome += "_at_stop"  # the --duration cap came first
        except Exception as exc:  # a journey that breaks is reported, not retried
            journey.notes.append(f"crashed {type(exc).__name__}: {exc}")
            journey.outcome = "crashed"
        finally:
            crowd.finished += 1
        raise StopUser()


class BotUser(_User):
    @task
    def walk(self) -> None:
        crowd = self.crowd()
        i = crowd.take_bot()
        if i is None:
            raise StopUser()
        try:
            Botting(_Http(self, crowd), crowd.plan, crowd.plan.bots[i], crowd.bots[i]).run()
        except Exception as exc:
            crowd.bots[i].notes.append(f"crashed {type(exc).__name__}: {exc}")
        finally:
            crowd.finished += 1
        raise StopUser()


def run(plan: CrowdPlan) -> CrowdResult:
    global _crowd
    crowd = _crowd = Crowd(plan)
    me = psutil.Process()
    began = time.time()
    ShopperUser.host = BotUser.host = plan.base_url
    ShopperUser.fixed_count, BotUser.fixed_count = len(plan.shoppers), len(plan.bots)
    users = [c for c in (ShopperUser, BotUser) if c.fixed_count]
    total = len(plan.shoppers) + len(plan.bots)
    env = Environment(user_classes=list(users))
    runner = env.create_local_runner()
    gevent.signal_handler(15, lambda: setattr(crowd, "stop_at", time.time()))  # SIGTERM
    if total:
        runner.start(total, spawn_rate=SPAWN_RATE)
    while crowd.finished < total and time.time() < crowd.stop_at + GRACE_S:
        gevent.sleep(1.0)
        cpu = me.cpu_times()
        print(_encode(crowd.progress(cpu.user + cpu.system)).decode(), flush=True)
    runner.quit()
    cpu = me.cpu_times()
    return CrowdResult(calls=crowd.calls, journeys=crowd.journeys, bots=crowd.bots,
                       cpu_s=cpu.user + cpu.system, wall_s=time.time() - began)


def main(argv: list[str]) -> None:
    plan_path, result_path = argv
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("locust.runners").setLevel(logging.ERROR)  # "spawn rate is very high"
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a socket per user
    plan = msgspec.msgpack.decode(Path(plan_path).read_bytes(), type=CrowdPlan)
    result = run(plan)
    Path(result_path).write_bytes(msgspec.msgpack.encode(result))


if __name__ == "__main__":
    main(sys.argv[1:])
