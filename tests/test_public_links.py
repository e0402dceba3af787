"""Every link fairdrop sends or prints starts with `FAIRDROP_PUBLIC_URL`, never with the
request's `Host` header (its sender chooses it); unset, with the address `serve` binds."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from service.admin import launches
from service.admin.models import ItemCreate, LaunchCreate, Transition
from service.clock import FakeClock
from service.deps import Deps
from service.infra.settings import from_env
from service.notify.sender import send_pending
from service.web.app import create_app
from tests.mail import Inbox
from tests.selfservice_kit import link, shop, unescape, unfold
from tests.serve import free_port, server_env

A = {"actor": "test", "channel": "admin"}


async def test_a_hostile_host_header_does_not_reach_the_emailed_link(
    deps: Deps, inbox: Inbox
) -> None:
    await launches.create_launch(deps, LaunchCreate(id="l1", name="L"), **A)
    await launches.add_item(deps, "l1", "stores", ItemCreate(id="S1", name="S"), **A)
    await launches.transition(deps, "l1", Transition(action="advance", to="registration_open"), **A)
    app = create_app(deps.settings)
    async with AsyncTestClient(app) as http:
        r = await http.post(
            "/api/launches/l1/registrations",
            json={"email": "victim@example.com"},
            headers={"Host": "attacker.example", "X-Forwarded-Host": "attacker.example"},
        )
    assert r.status_code == 202, r.text
    assert await send_pending(deps) == 1
    [mail] = inbox.messages
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"{deps.settings.base_url}/api/launches/l1/verify?token=" in text
    assert deps.settings.base_url == "https://shop.example"
    assert "attacker" not in mail.as_string()


def test_unset_the_public_url_is_the_bound_address() -> None:
    assert from_env({}).link("/x") == "http://127.0.0.1:8000/x"
    assert from_env({"FAIRDROP_PORT": "8101"}).link("/x") == "http://127.0.0.1:8101/x"
    for wildcard in ("0.0.0.0", "::"):
        env = {"FAIRDROP_HOST": wildcard, "FAIRDROP_PORT": "9000"}
        assert from_env(env).base_url == "http://127.0.0.1:9000"
    assert from_env({"FAIRDROP_HOST": "::1"}).base_url == "http://[::1]:8000"
    given = from_env({"FAIRDROP_PUBLIC_URL": "https://shop.example/drops/", "FAIRDROP_PORT": "1"})
    assert given.link("/x") == "https://shop.example/drops/x"


@pytest.mark.parametrize(
    "bad", ["shop.example", "ftp://shop.example", "https://", "https://a/?q=1"]
)
def test_a_public_url_links_cannot_be_built_on_is_refused(bad: str) -> None:
    with pytest.raises(SystemExit, match="FAIRDROP_PUBLIC_URL"):
        from_env({"FAIRDROP_PUBLIC_URL": bad})


@pytest.fixture
def served_on_a_port(deps: Deps) -> Iterator[str]:
    """`fairdrop serve --port P` for real, with no FAIRDROP_PUBLIC_URL; its base URL."""
    port = free_port()
    env = server_env(deps.settings)
    env.pop("FAIRDROP_PUBLIC_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "fairdrop serve exited"
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "fairdrop serve never became healthy"
            time.sleep(0.1)  # a retry interval, not a wait for something to happen
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


async def test_the_calendar_link_names_the_port_served_on(
    deps: Deps, clock: FakeClock, served_on_a_port: str
) -> None:
    s = await shop(deps, clock)
    path = f"/api/launches/drop/manage/reservations/{s.reservation.id}/calendar.ics"
    async with httpx.AsyncClient(base_url=served_on_a_port, timeout=10) as http:
        r = await http.get(path, params=link(deps, s.regs[0]), headers={"Host": "evil.example"})
    assert r.status_code == 200, r.text
    props = dict(line.split(":", 1) for line in unfold(r.text))
    assert f"See or cancel: {served_on_a_port}/api/launches/drop/manage?token=" in unescape(
        props["DESCRIPTION"]
    )
    assert "evil" not in r.text


def test_settings_replace_keeps_links_on_the_new_port() -> None:
    moved = msgspec.structs.replace(from_env({}), port=8101)
    assert moved.link("/") == "http://127.0.0.1:8101/"
