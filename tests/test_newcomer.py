"""The newcomer's path: `fairdrop demo` with no DATABASE_URL / REDIS_URL starts the
embedded servers itself; a shopper can hold and confirm through it over HTTP, every
link it prints signs its role in, the verification mail of a new registration can be
read with `fairdrop outbox` and followed, and `demo --reset` starts afresh."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
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


@contextlib.contextmanager
def _demo(env: dict[str, str], *args: str) -> Iterator[str]:
    """`fairdrop demo` running; yields what it printed before it listened."""
    with subprocess.Popen(
        [sys.executable, "-m", "service", "demo", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        try:
            yield _read_until(proc, r"Listening at", timeout=120)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _outbox(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "service", "outbox", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_demo_runs_on_the_embedded_default(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    port = free_port()
    env |= {
        "FAIRDROP_DATA_DIR": str(tmp_path / "data"),
        "FAIRDROP_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }
    base = f"http://127.0.0.1:{port}"
    with _demo(env) as printed:
        _wait_ready(base, timeout=30)
        assert f"open {base}/" in printed
        code = _shop(base, printed)
        _every_role(base, printed, code)
        _register_and_read_the_mail(base, env)
    # The embedded servers stop with the demo.
    pid_file = tmp_path / "data" / "postgres" / "postmaster.pid"
    assert not pid_file.exists(), "embedded PostgreSQL still running after the demo stopped"

    with _demo(env, "--reset") as printed:
        _wait_ready(base, timeout=30)
        admin = {"Authorization": f"Bearer {_key(printed, 'admin')}"}
        gone = httpx.get(
            f"{base}/api/admin/launches/demo/reservations/by-code/{code}", headers=admin
        )
        assert gone.status_code == 404, "the reservation went with the reset"
        assert "No e-mails in the outbox that match." in _outbox(env, "--to", NEWCOMER)
        # A fresh demo: the seeded shoppers are back, and their links work again.
        assert httpx.get(f"{base}/api/launches/demo").status_code == 200


NEWCOMER = "newcomer@example.com"


def _key(printed: str, role: str) -> str:
    found = re.search(rf"^  {role}\s+\S+/staff/login\?token=\S+\n\s+key (fd_\S+)$", printed, re.M)
    assert found, printed
    return found.group(1)


def _signin_link(printed: str, role: str) -> str:
    found = re.search(rf"^  {role}\s+(http\S+/staff/login\?token=\S+)$", printed, re.M)
    assert found, printed
    return found.group(1)


def _shop(base: str, printed: str) -> str:
    """The API's shopper journey with the first printed token; the reservation's code."""
    token = re.search(r"shopper1@example\.com\s+\S+\n\s+token (\S+)", printed)
    assert token, printed
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
    code: str = confirmed.json()["reservation"]["code"]
    admin = {"Authorization": f"Bearer {_key(printed, 'admin')}"}
    found = httpx.get(f"{base}/api/admin/launches/demo/reservations/by-code/{code}", headers=admin)
    assert found.status_code == 200 and found.json()["status"] == "confirmed"
    return code


def _every_role(base: str, printed: str, code: str) -> None:
    """What the demo prints signs each role in: `/`, the shopper link, the staff link."""
    home = httpx.get(f"{base}/")
    assert home.status_code == 200 and "Phone 17 launch (demo)" in home.text
    assert "Console 5 launch (demo)" in home.text

    link = re.search(r"shopper2@example\.com\s+(http\S+)", printed)
    assert link, printed
    with httpx.Client(headers={"accept": "text/html"}, follow_redirects=True) as browser:
        page = browser.get(link.group(1))
        assert page.status_code == 200 and "You are registered" in page.text
        assert "fd_shopper" in browser.cookies

    for role, words, home_path in (
        ("staff LDN", "store staff · LDN", "/desk"),
        ("agent", "customer service", "/agent"),
        ("operator", "operations", "/ops"),
    ):
        with httpx.Client() as browser:
            signin = _signin_link(printed, role)
            asked = browser.get(signin)
            assert asked.status_code == 200 and words in asked.text, role
            token = signin.split("token=")[1]
            used = browser.post(f"{base}/staff/login/link", data={"token": token})
            assert used.status_code == 303 and used.headers["location"] == home_path, role
            assert browser.get(f"{base}{home_path}").status_code == 200, role
            if role == "staff LDN":
                card = browser.get(f"{base}/api/staff/launches/demo/reservations/{code}")
                assert card.status_code == 200 and card.json()["status"] == "confirmed"
            again = httpx.post(f"{base}/staff/login/link", data={"token": token})
            assert again.status_code == 401, "a sign-in link works once"


def _register_and_read_the_mail(base: str, env: dict[str, str]) -> None:
    """Register on the launch that is open for it, read the mail, follow its link."""
    signed_up = httpx.post(f"{base}/api/launches/demo-next/registrations", json={"email": NEWCOMER})
    assert signed_up.status_code == 202, signed_up.text
    printed = _outbox(env, "--to", NEWCOMER)
    assert "Confirm your e-mail address for Console 5 launch (demo)" in printed
    link = re.search(r"(http://\S+/verify\?token=\S+)", printed)
    assert link and link.group(1).startswith(f"{base}/"), printed
    verified = httpx.get(link.group(1))
    assert verified.status_code == 200 and verified.json()["status"] == "verified"


def test_a_taken_port_is_said_plainly_before_anything_starts(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["FAIRDROP_DATA_DIR"] = str(tmp_path / "data")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for command in ("demo", "serve"):
            done = subprocess.run(
                [sys.executable, "-m", "service", command, "--port", str(port)],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 2, done.stderr  # a mistake on the command line
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and f"cannot listen on 127.0.0.1:{port}" in lines[0]
            assert "--port" in lines[0]
    assert not (tmp_path / "data" / "postgres").exists(), "nothing was started"
