"""Child processes fairdrop starts (servers for the demo, a rehearsal or a test)."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterable

import psutil  # type: ignore[import-untyped]  # no type information

LOOPBACK = "127.0.0.1"
"""Where the servers fairdrop starts for itself listen."""

READY_TIMEOUT = 30.0
"""How long a server fairdrop starts may take to answer."""


def pid_alive(pid: int) -> bool:
    try:
        return str(psutil.Process(pid).status()) != str(psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # someone else's process, but alive
        return True


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def stop(
    procs: subprocess.Popen[bytes] | Iterable[subprocess.Popen[bytes]], timeout: float = 10.0
) -> None:
    """Ask each process to stop (SIGTERM), all at once; kill any still running after
    `timeout` seconds; return when all are gone."""
    group = [procs] if isinstance(procs, subprocess.Popen) else list(procs)
    for proc in group:
        proc.terminate()
    for proc in group:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
