"""The e-mail-verified page says what happens next as the launch stands (waiting room
not open yet, open, the sale on), how each turn goes, and gives every time in the
launch's own time zone, with the reader's beside it when theirs differs."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from playwright.async_api import expect

from service.admin import launches
from service.admin.models import LaunchUpdate
from service.clock import FakeClock, SystemClock
from service.deps import Deps
from service.infra.settings import Settings
from service.queue.signup import verification_link
from service.web.app import create_app
from tests.browser import Browser, browser, no_script_errors, shoot
from tests.serve import advance, serving, stocked_launch

__all__ = ["browser", "no_script_errors"]  # fixtures used by name

Client = AsyncTestClient  # type: ignore[type-arg]
A = {"actor": "test", "channel": "admin"}
CHECKIN = datetime(2027, 3, 1, 15, 0, tzinfo=UTC)  # 10:00 in New York (EST)


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[Client]:
    application = create_app(msgspec.structs.replace(settings, background=False), clock=clock)
    async with AsyncTestClient(application) as c:
        yield c


async def _launch(deps: Deps, mode: str = "prequeue-shuffle") -> int:
    [reg] = await stocked_launch(
        deps,
        registrations=1,
        fairness_mode=mode,
        per_customer_limit=2,
        admission_window_seconds=180,
        time_zone="America/New_York",
        registration_closes_at=CHECKIN - timedelta(days=1),
        checkin_opens_at=CHECKIN,
        sale_starts_at=CHECKIN + timedelta(hours=1),
        pickup_starts_at=CHECKIN + timedelta(days=3),
    )
    return reg


def _path(deps: Deps, reg: int) -> str:
    link = urlsplit(verification_link(deps, "drop", reg))
    return f"/launches/drop/verify?{link.query}"


async def test_what_happens_next_follows_the_launch(deps: Deps, app: Client) -> None:
    reg = await _launch(deps)
    await advance(deps, "drop", "registration_open")
    page = (await app.get(_path(deps, reg))).text
    text = re.sub(r"<[^>]+>", "", page)
    assert "The waiting room opens Mon 1 Mar 2027, 10:00 EST" in text, text
    assert "We e-mail you a link when it opens" in text
    assert "The sale starts Mon 1 Mar 2027, 11:00 EST: everyone in the waiting room" in text
    assert "you have 3 minutes to choose a store and model and hold one (up to 2" in text
    assert "The hold lasts 5 minutes" in text
    assert "collect from Thu 4 Mar 2027, 10:00 EST at the store you chose" in text
    assert "Times are America/New York time" in text

    await advance(deps, "drop", "checkin_open")
    text = re.sub(r"<[^>]+>", "", (await app.get(_path(deps, reg))).text)
    assert "The waiting room is open now" in text and "The waiting room opens" not in text
    assert "arriving early gives no advantage" in text

    await advance(deps, "drop", "selling")
    text = re.sub(r"<[^>]+>", "", (await app.get(_path(deps, reg))).text)
    assert "The sale is on now" in text and "The sale starts" not in text

    await advance(deps, "drop", "closed")
    text = re.sub(r"<[^>]+>", "", (await app.get(_path(deps, reg))).text)
    assert "The sale of Drop is over" in text and "Go to the waiting room" not in text


async def test_first_come_first_served_never_speaks_of_a_draw(deps: Deps, app: Client) -> None:
    reg = await _launch(deps, "fifo")
    await advance(deps, "drop", "checkin_open")
    text = re.sub(r"<[^>]+>", "", (await app.get(_path(deps, reg))).text)
    assert "first come, first served" in text
    for drawn in ("random", "draw", "no advantage"):
        assert drawn not in text.lower(), drawn


async def test_a_launch_time_zone_is_a_real_one(deps: Deps, app: Client, admin_key: str) -> None:
    auth = {"Authorization": f"Bearer {admin_key}"}
    body = {"id": "tz", "name": "TZ", "time_zone": "Mars/Olympus_Mons"}
    refused = await app.post("/api/admin/launches", json=body, headers=auth)
    assert refused.status_code == 422, refused.text
    assert refused.json()["fields"] == ["time_zone"]
    made = await app.post(
        "/api/admin/launches", json=body | {"time_zone": "Asia/Tokyo"}, headers=auth
    )
    assert made.status_code == 201 and made.json()["time_zone"] == "Asia/Tokyo"
    patched = await app.patch(
        "/api/admin/launches/tz", json={"time_zone": "../../etc/passwd"}, headers=auth
    )
    assert patched.status_code == 422 and patched.json()["fields"] == ["time_zone"]
    assert (await launches.get_launch(deps, "tz")).time_zone == "Asia/Tokyo"
    public = (await app.get("/api/launches/tz")).json()  # what an app shows times in
    assert public["time_zone"] == "Asia/Tokyo" and "sale_starts_at" in public


@pytest.fixture
def served(deps: Deps) -> Iterator[str]:
    with serving(deps.settings) as base:
        yield base


async def test_the_reader_sees_the_launch_time_and_their_own(
    deps: Deps, served: str, browser: Browser, no_script_errors: None
) -> None:
    deps.clock = SystemClock()  # the server's: the link must not expire on it
    reg = await _launch(deps)
    await advance(deps, "drop", "registration_open")
    await launches.update_launch(deps, "drop", LaunchUpdate(name="Fairphone 6"), **A)
    page = await browser.new_page(served, phone=True)  # the browser is in Europe/London

    async def look() -> None:
        await page.goto(_path(deps, reg))
        await expect(page.get_by_role("heading", name="You are registered")).to_be_visible()
        first = page.locator("#next li").first
        # en-GB names New York's zone by its offset.
        await expect(first).to_contain_text(
            re.compile(r"Mon 1 Mar, 10:00 (EST|GMT-5) \(15:00 GMT your time\)")
        )
        await shoot(page, "57-verified-time-zones")

    await browser.run(look())
