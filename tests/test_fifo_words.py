"""A first-come launch never claims a draw: every shopper page of a `fifo` launch, in
every state, and every e-mail it can send are free of draw wording (random order,
verifiable draw, the published draw), and its pages say "first come, first served"."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from playwright.async_api import expect

from service.admin import launches
from service.admin.models import STATES, Transition
from service.clock import FakeClock
from service.deps import Deps
from service.infra.settings import Settings
from service.notify import send_pending
from service.notify.sender import enqueue_notification
from service.notify.templates import kinds
from service.queue.registrations import issue_token
from service.queue.signup import verification_link
from service.stock import confirm, holds
from service.web.app import create_app
from service.web.auth import SHOPPER_COOKIE
from tests.browser import Browser, browser, no_script_errors, shoot
from tests.mail import Inbox
from tests.serve import ACTOR, selling_launch, serving, stocked_launch

__all__ = ["browser", "no_script_errors"]  # fixtures used by name

L = "drop"
Client = AsyncTestClient  # type: ignore[type-arg]
DRAW_WORDS = re.compile(
    r"\bdraw\b|\bdrawn\b|\bdrawing\b|random|shuffl|lottery|verifiable|verify-draw"
    r"|same chance|checked by anyone|seed|fingerprint",
    re.IGNORECASE,
)
DENIAL = re.compile(r"\bno draw\b", re.IGNORECASE)  # "This launch has no draw" claims none
FIRST_COME = "first come, first served"
# The lottery's own notices: a fifo launch never sends them.
LOTTERY_KINDS = {"lottery_invited", "not_drawn", "moved_up"}


def claim_of(text: str) -> str | None:
    found = DRAW_WORDS.search(DENIAL.sub(" ", text))
    return None if found is None else found.group()


def words(page: str) -> str:
    """What a person can read on the page (hidden views too), without markup or scripts."""
    body = re.sub(r"<script.*?</script>", " ", page, flags=re.DOTALL)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[Client]:
    application = create_app(msgspec.structs.replace(settings, background=False), clock=clock)
    async with AsyncTestClient(application) as c:
        yield c


async def _pages(deps: Deps, app: Client, reg: int) -> dict[str, str]:
    """Every shopper page of the launch as it is now, signed in as `reg`."""
    token = (await issue_token(deps, L, reg)).token
    signed_in = {"cookie": f"{SHOPPER_COOKIE}={token}"}
    link = verification_link(deps, L, reg).split("token=")[1]
    paths = {
        "landing": (f"/launches/{L}", {}),
        "verified": (f"/launches/{L}/verify?token={link}", {}),
        "queue": (f"/launches/{L}/queue", signed_in),
        "queue (signed out)": (f"/launches/{L}/queue", {}),
        "reservation": (f"/launches/{L}/reservation", signed_in),
        "reservation (signed out)": (f"/launches/{L}/reservation", {}),
        "draw": (f"/launches/{L}/draw", {}),
    }
    out = {}
    for name, (path, headers) in paths.items():
        r = await app.get(path, headers=headers)
        assert r.status_code in (200, 401), (name, r.status_code)
        assert r.headers["content-type"].startswith("text/html")
        out[name] = words(r.text)
    return out


async def test_no_fifo_page_claims_a_draw_in_any_state(deps: Deps, app: Client) -> None:
    regs = await stocked_launch(deps, L, fairness_mode="fifo", units=2, registrations=2)
    for state in STATES:
        if state != "draft":
            await launches.transition(deps, L, Transition(action="advance", to=state), **ACTOR)  # type: ignore[arg-type]
        if state == "selling":
            hold = await holds.reserve(deps, L, regs[0], "S1", "K1")
            await confirm.confirm(deps, L, regs[0], hold.hold_id)
        for name, text in (await _pages(deps, app, regs[0])).items():
            claim = claim_of(text)
            assert claim is None, f"{name} page ({state}) says {claim!r}: {text}"
            assert FIRST_COME in text.lower(), f"{name} page ({state})"


async def test_a_deployment_of_first_come_launches_claims_no_draw(
    deps: Deps, app: Client
) -> None:
    """The front page names each launch's order; with only first-come launches, none
    of it speaks of a draw (its intro and footer did, for every deployment)."""
    await stocked_launch(deps, L, fairness_mode="fifo", units=1, registrations=1)
    await launches.transition(deps, L, Transition(action="advance", to="selling"), **ACTOR)
    text = words((await app.get("/")).text)
    assert claim_of(text) is None, f"the front page says {claim_of(text)!r}: {text}"
    assert FIRST_COME in text.lower()


async def test_the_words_check_can_fail(deps: Deps, app: Client) -> None:
    """A drawn launch's pages do speak of the draw: the check above sees such wording."""
    regs = await stocked_launch(deps, L, units=1, registrations=1)
    pages = await _pages(deps, app, regs[0])
    assert claim_of(pages["landing"]) and claim_of(pages["draw"])
    assert FIRST_COME not in pages["landing"].lower()


async def test_no_fifo_email_claims_a_draw(deps: Deps, clock: FakeClock, inbox: Inbox) -> None:
    regs = await selling_launch(deps, L, units=3, registrations=1)
    reg = regs[0]
    reservation = await confirm.confirm(
        deps, L, reg, (await holds.reserve(deps, L, reg, "S1", "K1")).hold_id
    )
    hold = {"hold": "h1", "store": "S1", "sku": "K1"}
    payloads = {
        "verify_email": {"link": "https://example.test/verify"},
        "registration_confirmed": {},
        "checkin_open": {},
        "your_turn": {"until_ms": clock.now_ms() + 60_000},
        "hold_expiring": hold | {"expires_ms": clock.now_ms() + 60_000},
        "hold_released": hold,
        "reservation_confirmed": {"reservation": reservation.id},
        "pickup_reminder": {"reservation": reservation.id, "stage": "open"},
        "reservation_cancelled": {"reservation": reservation.id},
        "reservation_no_show": {"reservation": reservation.id},
    }
    assert set(payloads) == kinds() - LOTTERY_KINDS, "every kind a fifo launch sends"
    async with deps.pool.acquire() as con:
        for kind, payload in payloads.items():
            await enqueue_notification(con, L, kind, {"registration": reg} | payload)

    assert await send_pending(deps) == len(payloads) + 1  # and the confirm's own notice

    for msg in inbox.messages:
        for part in ("plain", "html"):
            body = msg.get_body((part,))
            assert body is not None
            text = words(str(body.get_content()))
            claim = claim_of(text)
            assert claim is None, f"{msg['Subject']} ({part}) says {claim!r}"
    [checkin] = [m for m in inbox.messages if "Check-in" in str(m["Subject"])]
    assert FIRST_COME in words(str(checkin.get_body(("plain",)).get_content())).lower()  # type: ignore[union-attr]


async def test_a_fifo_launch_in_the_browser(
    deps: Deps, browser: Browser, no_script_errors: None
) -> None:
    await stocked_launch(deps, L, fairness_mode="fifo", registrations=1)
    await deps.pool.execute("UPDATE launches SET name = 'Fairphone 6'")
    await launches.transition(
        deps, L, Transition(action="advance", to="registration_open"), **ACTOR
    )

    with serving(deps.settings) as base:
        page = await browser.new_page(base, phone=True)

        async def look() -> None:
            await page.goto(f"/launches/{L}")
            await expect(page.locator(".hero")).to_contain_text("First come, first served")
            await shoot(page, "34-fifo-landing")
            await page.goto(f"/launches/{L}/draw")
            await expect(
                page.get_by_role("heading", name="No draw: first come, first served")
            ).to_be_visible()
            await shoot(page, "35-fifo-no-draw")

        await browser.run(look())
