"""A real Redis Cluster on loopback for the tests: three primaries, each its own
`redis-server` process, joined with `redis-cli --cluster create`.

Without the binaries the cluster tests skip, unless FAIRDROP_REQUIRE_CLUSTER=1 (CI),
where a missing binary fails them instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


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


def _until(what: str, ready: object, seconds: float = 20.0) -> None:
    """Poll `ready()` (a health check) until it holds; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not ready():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"the test cluster never became ready: {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def local_cluster(nodes: int = 3) -> Iterator[list[int]]:
    """Start a cluster of `nodes` primaries; yields their ports."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        message = "no redis-server / redis-cli on PATH (apt-get install redis-server)"
        if os.environ.get("FAIRDROP_REQUIRE_CLUSTER") == "1":
            pytest.fail(message)
        pytest.skip(message)
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
                _until(f"node {port} answers", lambda p=port: "PONG" in _cli(cli, p, "ping"))
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
                _until(
                    f"node {port} sees the cluster ok",
                    lambda p=port: "cluster_state:ok" in _cli(cli, p, "cluster", "info"),
                )
            yield ports
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=10)
