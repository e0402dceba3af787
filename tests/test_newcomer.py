"""The newcomer's path: `fairdrop demo` with no DATABASE_URL / REDIS_URL starts the
embedded servers itself, and a shopper can hold and confirm through it over HTTP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.serve import free_port

pytestmark = pytest.mark.embedded


def _read_until(proc: subprocess.Popen[str], pattern: str, timeout: float) -> str:
    """Output of the demo up to the first line matching `pattern`."""
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if re.search(pattern, line):
            return "".join(seen)
    raise AssertionError(f"demo never printed {pattern!r}; it printed:\n{''.join(seen)}")


def _wait_ready(base: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.05
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
    raise AssertionError("the demo server never became ready")


def _wait_admitted(base: str, ticket: dict[str, str]) -> None:
    for _ in range(60):  # as a polite client: about 2 a second, honouring Retry-After
        reply = httpx.get(f"{base}/api/launches/demo/queue/status", headers=ticket)
        if reply.status_code == 429:
            time.sleep(float(reply.headers["retry-after"]))
            continue
        status = reply.json()
        if status["status"]["state"] == "admitted":
            return
        time.sleep(0.5)
    raise AssertionError(f"never admitted: {status}")


def test_demo_runs_on_the_embedded_default(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    port = free_port()
    env |= {
        "FAIRDROP_DATA_DIR": str(tmp_path / "data"),
        "FAIRDROP_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }
    with subprocess.Popen(
        [sys.executable, "-m", "service", "demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        _exercise(proc, port)
    # The embedded servers stop with the demo.
    pid_file = tmp_path / "data" / "postgres" / "postmaster.pid"
    assert not pid_file.exists(), "embedded PostgreSQL still running after the demo stopped"


def _exercise(proc: subprocess.Popen[str], port: int) -> None:
    try:
        printed = _read_until(proc, r"Listening at", timeout=120)
        token = re.search(r"shopper1@example\.com\s+(\S+)", printed)
        key = re.search(r"Admin API key\s+(fd_\S+)", printed)
        assert token and key, printed
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base, timeout=30)
        shopper = {"Authorization": f"Bearer {token.group(1)}"}
        checked_in = httpx.post(f"{base}/api/launches/demo/queue/checkin", headers=shopper)
        assert checked_in.status_code == 200, checked_in.text
        ticket = {"Authorization": f"Bearer {checked_in.json()['ticket']}"}
        _wait_admitted(base, ticket)
        hold = httpx.post(
            f"{base}/api/launches/demo/holds",
            json={"store_id": "LDN", "sku_id": "PHONE-128"},
            headers=ticket,
        )
        assert hold.status_code == 201, hold.text
        confirmed = httpx.post(
            f"{base}/api/launches/demo/holds/{hold.json()['hold_id']}/confirm", headers=ticket
        )
        assert confirmed.status_code == 201, confirmed.text
        code = confirmed.json()["reservation"]["code"]
        admin = {"Authorization": f"Bearer {key.group(1)}"}
        found = httpx.get(
            f"{base}/api/admin/launches/demo/reservations/by-code/{code}", headers=admin
        )
        assert found.status_code == 200 and found.json()["status"] == "confirmed"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
