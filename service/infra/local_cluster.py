"""A Redis Cluster on loopback: each primary its own `redis-server` process, joined
with `redis-cli --cluster create`. For the cluster tests and `fairdrop rehearse
--redis-cluster`; production clusters are deployed (deploy/compose.cluster.yaml)."""

from __future__ import annotations

import contextlib
import functools
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from service.infra import processes


class ClusterUnavailable(RuntimeError):
    """redis-server or redis-cli is not installed."""


def binaries() -> tuple[str, str]:
    """The `redis-server` and `redis-cli` on PATH, or `ClusterUnavailable`."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        raise ClusterUnavailable(
            "no redis-server / redis-cli on PATH (apt-get install redis-server)"
        )
    return server, cli


def _free_port() -> int:
    """A port free for a node and for its cluster bus (port + 10000)."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port >= 55000:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def _cli(cli: str, port: int, *args: str) -> str:
    done = subprocess.run(
        [cli, "-p", str(port), *args], capture_output=True, text=True, timeout=30, check=False
    )
    return done.stdout + done.stderr


def _says(cli: str, port: int, words: str, *args: str) -> bool:
    return words in _cli(cli, port, *args)


def _until(what: str, ready: Callable[[], bool], seconds: float = 20.0) -> None:
    """Poll `ready()` (a health check) until it holds; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the local cluster never became ready: {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def local_cluster(nodes: int = 3) -> Iterator[list[int]]:
    """Start a cluster of `nodes` primaries; yields their ports, stops them on exit."""
    server, cli = binaries()
    ports = [_free_port() for _ in range(nodes)]
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="fd-cluster-") as work:
        try:
            for port in ports:
                folder = Path(work) / str(port)
                folder.mkdir()
                args = [server, "--port", str(port), "--bind", "127.0.0.1"]
                args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
                args += ["--dir", str(folder), "--save", "", "--appendonly", "no"]
                procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL))
            for port in ports:
                _until(f"node {port} answers", functools.partial(_says, cli, port, "PONG", "ping"))
            created = _cli(
                cli,
                ports[0],
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            )
            if "All 16384 slots covered" not in created:
                raise RuntimeError(f"redis-cli --cluster create failed:\n{created}")
            for port in ports:
                ok = functools.partial(_says, cli, port, "cluster_state:ok", "cluster", "info")
                _until(f"node {port} sees the cluster ok", ok)
            yield ports
        finally:
            processes.stop(procs)
