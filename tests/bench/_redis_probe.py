"""What Redis saw: commands per client (MONITOR), INFO commandstats, key sizes."""

from __future__ import annotations

import collections
import contextlib
import socket
import threading

import psutil  # type: ignore[import-untyped]
from redis.asyncio.connection import parse_url

from service.deps import Deps


async def redis_calls(deps: Deps) -> dict[str, int]:
    """INFO commandstats as {command: calls} (Redis counts commands scripts run, too)."""
    stats = await deps.redis.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


class Monitor:
    """Redis MONITOR on a thread: counts the commands sent by given client ports (the
    server's connections), so other clients of a shared Redis do not count."""

    def __init__(self, redis_url: str) -> None:
        where = parse_url(redis_url)
        self._sock = socket.create_connection(
            (where.get("host", "127.0.0.1"), where.get("port", 6379))
        )
        if where.get("password"):
            user = where.get("username")
            auth = f"AUTH {user} {where['password']}" if user else f"AUTH {where['password']}"
            self._sock.sendall(auth.encode() + b"\r\n")
        self._sock.sendall(b"MONITOR\r\n")
        self.by_client: collections.Counter[str] = collections.Counter()
        self.commands: collections.Counter[tuple[str, str]] = collections.Counter()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        pending = b""
        while True:
            try:
                data = self._sock.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            *lines, pending = (pending + data).split(b"\r\n")
            for line in lines:
                # +1700000000.123456 [0 127.0.0.1:54321] "evalsha" "..."
                if not line.startswith(b"+") or b"[" not in line:
                    continue
                client = line[line.index(b"[") + 1 : line.index(b"]")].decode().split(" ")[-1]
                name = line[line.index(b"]") + 3 :].split(b'"', 1)[0].decode().lower()
                self.by_client[client] += 1
                self.commands[(client, name)] += 1

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(timeout=5)

    def sent_by(self, clients: set[str]) -> dict[str, int]:
        """Commands the given clients ("host:port") sent, by command name."""
        seen: collections.Counter[str] = collections.Counter()
        for (client, name), n in self.commands.items():
            if client in clients:
                seen[name] += n
        return dict(seen.most_common())


def redis_clients_of(pid: int, redis_url: str) -> set[str]:
    """ "host:port" of each connection the process (and its children) holds to Redis."""
    where = parse_url(redis_url)
    port = int(where.get("port", 6379))
    main = psutil.Process(pid)
    found: set[str] = set()
    for proc in [main, *main.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            for c in proc.net_connections(kind="tcp"):
                if c.raddr and c.raddr.port == port:
                    found.add(f"{c.laddr.ip}:{c.laddr.port}")
    return found


def calls_between(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    moved = {k: v - before.get(k, 0) for k, v in after.items()}
    return {k: v for k, v in sorted(moved.items(), key=lambda kv: -kv[1]) if v}


async def key_bytes(deps: Deps, launch_id: str) -> dict[str, int]:
    """MEMORY USAGE (SAMPLES 0: every element counted) of the launch's queue keys."""
    sizes: dict[str, int] = {}
    keys = deps.keys(launch_id)
    for name in ("qpos", "prequeue", "drawset", "qmeta", "window", "shopping"):
        size = await deps.redis.memory_usage(getattr(keys, name), samples=0)
        if size:
            sizes[name] = int(size)
    return sizes
