"""Child processes fairdrop starts (servers for the demo, a rehearsal or a test)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable


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
