"""Every role's whole journey in a real browser, on the demo's seed, the way a newcomer
takes it from what `fairdrop demo` prints: the shopper from the front page through
registering, the verification mail read in the outbox, the waiting room, a hold, the
reservation and cancelling it; staff, an agent and an operator from their one-time
sign-in links to the work of their pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from playwright.async_api import expect

from service import demo
from service.admin import launches
from service.admin.models import Transition
from service.clock import SystemClock
from service.deps import Deps
from service.queue.checkin import check_in
from service.stock import confirm, holds
from service.stock.codes import format_code
from service.stock.models import Reservation
from tests.browser import Browser, browser, no_script_errors, shoot
from tests.serve import serving

__all__ = ["browser", "no_script_errors"]  # fixtures used by name

A = {"actor": "test", "channel": "admin"}


@pytest.fixture
def served(deps: Deps) -> Iterator[str]:
    """The app on real time, its links starting where it listens."""
    deps.clock = SystemClock()
    with serving(deps.settings) as base:
        deps.settings = msgspec.structs.replace(deps.settings, public_url=base)
        yield base


def _link(info: demo.DemoInfo, role: str, store: str | None = None) -> str:
    return next(k.signin_path for k in info.keys if (k.role, k.store_id) == (role, store))


async def _sign_in_by_link(page: Any, path: str, as_who: str, shot: str | None = None) -> None:
    await page.goto(path)
    await expect(page.get_by_role("heading", name="Staff sign-in")).to_be_visible()
    await expect(page.locator("#as-who")).to_have_text(as_who)
    if shot:
        await shoot(page, shot)
    await page.get_by_role("button", name=f"Sign in as {as_who}").click()


async def _advance(deps: Deps, launch_id: str, *states: str) -> None:
    for to in states:
        await launches.transition(
            deps,
            launch_id,
            Transition(action="advance", to=to),
            **A,  # type: ignore[arg-type]
        )


async def _bought(deps: Deps, email: str, store: str, sku: str = "PHONE-128") -> Reservation:
    reg = await deps.pool.fetchval(
        "SELECT id FROM registrations WHERE launch_id = 'demo' AND email = $1", email
    )
    await check_in(deps, "demo", reg)
    hold = await holds.reserve(deps, "demo", reg, store, sku)
    return await confirm.confirm(deps, "demo", reg, hold.hold_id)


async def test_shopper_from_the_front_page_to_a_cancelled_reservation(
    deps: Deps, served: str, browser: Browser, no_script_errors: None
) -> None:
    info = await demo.seed(deps)
    page = await browser.new_page(served, phone=True)
    email = "newcomer@example.com"

    async def register() -> None:
        await page.goto("/")
        await expect(page.get_by_role("heading", name="Launches")).to_be_visible()
        cards = page.locator(".launch-card")
        await expect(cards).to_have_count(2)
        await expect(cards.first).to_contain_text("On sale now")
        await shoot(page, "50-home")
        await cards.filter(has_text="Console 5").get_by_role("link", name="Register").click()
        await expect(page.get_by_role("heading", name="Console 5 launch (demo)")).to_be_visible()
        await page.get_by_label("E-mail address").fill(email)
        await page.get_by_label("Full name").fill("Nova Newcomer")
        await page.get_by_label("Preferred store").select_option(label="London Regent St")
        await page.get_by_role("button", name="Register").click()
        await expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()

    async def read_the_mail() -> None:
        # Nothing is sent on the embedded default: the operator's outbox has the mail.
        await _sign_in_by_link(page, _link(info, "operator"), "operations")
        await page.goto(f"/outbox?to={email}")
        mail = page.locator("article.mail")
        await expect(mail).to_have_count(1)
        await expect(mail.get_by_role("heading")).to_have_text(
            "Confirm your e-mail address for Console 5 launch (demo)"
        )
        await expect(mail.locator(".badge")).to_have_text("waiting")
        await shoot(page, "51-outbox")
        await mail.locator('a[href*="/verify?token="]').click()
        await expect(page.get_by_role("heading", name="You are registered")).to_be_visible()
        await shoot(page, "52-verified-from-outbox")
        await page.get_by_role("link", name="Go to the waiting room").click()
        await expect(page.locator("#view-notopen")).to_be_visible()

    await browser.run(register())
    await browser.run(read_the_mail())

    await _advance(deps, "demo-next", "registration_closed", "checkin_open")

    async def check_in_early() -> None:
        await page.reload()
        await expect(page.locator("#view-prequeue")).to_be_visible()
        # The sale is eight days away: counted in days, and said when, with its zone.
        countdown = page.locator("#pre-countdown")
        await expect(countdown).to_have_text(re.compile(r"^[78] days \d{1,2}:\d\d:\d\d$"))
        await expect(page.locator("#pre-sale-at")).to_contain_text(re.compile(r"\d\d:\d\d GMT"))
        await shoot(page, "53-prequeue")

    await browser.run(check_in_early())
    await _advance(deps, "demo-next", "selling")  # the draw: alone in it, first in line

    async def hold_confirm_cancel() -> None:
        await expect(page.locator("#view-turn")).to_be_visible()
        await page.get_by_label("Console 5, disc edition").first.check()
        await shoot(page, "54-your-turn")
        await page.get_by_role("button", name=re.compile("^Hold one")).click()
        await expect(page.locator("#view-hold")).to_be_visible()
        await page.get_by_role("button", name="Confirm reservation").click()
        await expect(page.get_by_role("heading", name="Your reservation")).to_be_visible()
        await expect(page.locator(".qr svg")).to_be_visible()
        await expect(page.locator(".badge")).to_have_text("confirmed")
        await shoot(page, "55-reservation")
        await page.get_by_role("button", name="Cancel this reservation…").click()
        await page.get_by_role("button", name="Yes, cancel it").click()
        await expect(page.locator(".badge")).to_have_text("cancelled")
        await expect(page.get_by_text("This reservation is cancelled")).to_be_visible()
        await expect(page.locator(".qr")).to_have_count(0)
        await expect(page.get_by_text("Show this code")).to_have_count(0)
        await expect(page.get_by_role("link", name="This file takes it off")).to_be_visible()
        await shoot(page, "56-reservation-cancelled")

    await browser.run(hold_confirm_cancel())
    row = await deps.pool.fetchrow(
        "SELECT v.status, v.store_id FROM reservations v JOIN registrations r"
        " ON r.launch_id = v.launch_id AND r.id = v.registration_id WHERE r.email = $1",
        email,
    )
    assert (row["status"], row["store_id"]) == ("cancelled", "LDN")


async def test_a_demo_shopper_link_opens_the_waiting_room(
    deps: Deps, served: str, browser: Browser, no_script_errors: None
) -> None:
    info = await demo.seed(deps)
    page = await browser.new_page(served, phone=True)

    async def walk() -> None:
        await page.goto(info.shoppers[0].link)  # as printed: the API link, for a browser
        await expect(page.get_by_role("heading", name="You are registered")).to_be_visible()
        await page.get_by_role("link", name="Go to the waiting room").click()
        await expect(page.locator("#view-turn")).to_be_visible()  # selling: in at once

    await browser.run(walk())


async def test_staff_sign_in_look_up_and_collect(
    deps: Deps, served: str, browser: Browser, no_script_errors: None
) -> None:
    info = await demo.seed(deps)
    mine = await _bought(deps, "shopper1@example.com", "LDN")
    await _bought(deps, "shopper2@example.com", "MAN")  # another store's: not on this desk
    page = await browser.new_page(served)

    async def walk() -> None:
        await _sign_in_by_link(
            page, _link(info, "staff", "LDN"), "store staff · LDN", "70-sign-in-link"
        )
        await expect(page.get_by_role("heading", name="Pickup desk")).to_be_visible()
        await shoot(page, "71-desk-launches")
        await page.get_by_role("link", name="Phone 17 launch (demo)").click()
        await expect(page.get_by_role("heading", name="London Regent St")).to_be_visible()
        await expect(page.locator("#n-expected")).to_have_text("1")
        field = page.get_by_label(re.compile("^Pickup code"))
        await field.fill(format_code(mine.code).replace("-", " ").lower())
        await field.press("Enter")
        await expect(page.locator("#result-name")).to_have_text("Ada Lovelace")
        await shoot(page, "72-desk-card")
        await page.get_by_role("button", name="Hand over and mark collected").click()
        await expect(page.locator("#result-note")).to_have_text("Collected. Hand the unit over.")
        await expect(page.locator("#n-collected")).to_have_text("1")
        await expect(page.locator("#n-outstanding")).to_have_text("0")
        await shoot(page, "73-desk-collected")

    await browser.run(walk())
    assert (
        await deps.pool.fetchval("SELECT status FROM reservations WHERE id = $1", mine.id)
        == "collected"
    )


async def test_agent_sign_in_search_move_and_cancel(
    deps: Deps, served: str, browser: Browser, no_script_errors: None
) -> None:
    info = await demo.seed(deps)
    bought = await _bought(deps, "shopper2@example.com", "LDN")
    code = format_code(bought.code)
    page = await browser.new_page(served, phone=True)

    async def walk() -> None:
        await _sign_in_by_link(page, _link(info, "agent"), "customer service")
        await page.get_by_label(re.compile("^E-mail, phone")).fill("Shopper2@Example.com")
        await page.get_by_role("button", name="Search").click()
        # Registered for both demo launches: one card each.
        await expect(page.get_by_role("heading", name="Alan Turing")).to_have_count(2)
        await expect(page.locator(".timeline li").first).to_be_visible()
        await shoot(page, "80-agent-customer")
        await page.get_by_role("button", name=f"Move reservation {code}").click()
        await page.get_by_label("Move to store").select_option(label="Manchester Arndale")
        await page.get_by_label("Reason for moving").fill("Lives in Manchester now")
        await page.get_by_role("button", name="Move reservation", exact=True).click()
        await expect(page.locator("#flash")).to_contain_text(f"{code} moved to Manchester")
        await page.get_by_role("button", name=f"Cancel reservation {code}").click()
        await page.get_by_label("Reason for cancelling").fill("Customer called: bought elsewhere")
        await page.get_by_role("button", name="Cancel reservation", exact=True).click()
        await expect(page.locator("#flash")).to_contain_text("cancelled")
        card = page.locator("section").filter(has_text="Phone 17 launch (demo)")
        await expect(card.locator(".timeline")).to_contain_text("bought elsewhere")
        await shoot(page, "81-agent-moved-and-cancelled")

    await browser.run(walk())
    row = await deps.pool.fetchrow("SELECT store_id, status FROM reservations")
    assert (row["store_id"], row["status"]) == ("MAN", "cancelled")


async def test_operator_sign_in_rate_pause_and_resume(
    deps: Deps, served: str, browser: Browser, no_script_errors: None
) -> None:
    info = await demo.seed(deps)
    page = await browser.new_page(served)

    async def walk() -> None:
        await _sign_in_by_link(page, _link(info, "operator"), "operations")
        await expect(page.get_by_role("heading", name="Operations")).to_be_visible()
        await shoot(page, "90-ops-launches")
        await page.get_by_role("link", name="Phone 17 launch (demo)").click()
        await expect(page.locator("#c-registered")).to_have_text("8")
        pause = page.get_by_role("button", name="Pause admission")
        resume = page.get_by_role("button", name="Resume admission")
        await expect(pause).to_be_enabled()
        await expect(resume).to_be_disabled()
        # Nobody has checked in: the charts say 0, and so does their peak.
        await expect(page.locator("#max-waiting")).to_have_text("now 0, peak 0")
        await expect(page.locator("#held-back")).not_to_contain_text("not selling")
        await page.get_by_label(re.compile("^Admit rate")).fill("10")
        await page.get_by_role("button", name="Set rate").click()
        await expect(page.locator("#flash")).to_contain_text("10 per second")
        await pause.click()
        await expect(page.locator("#state")).to_contain_text("paused")
        await expect(pause).to_be_disabled()
        await expect(resume).to_be_enabled()
        await expect(page.locator("#pause-note")).to_contain_text("no new holds")
        await shoot(page, "91-ops-paused")
        await resume.click()
        await expect(page.locator("#flash")).to_contain_text("Resumed")
        await expect(page.locator("#state")).not_to_contain_text("paused")
        await expect(pause).to_be_enabled()
        await expect(resume).to_be_disabled()
        await expect(page.locator("#held-back")).not_to_contain_text("not selling")
        await shoot(page, "92-ops-resumed")
        # The other launch, from the picker on the page.
        await page.get_by_label("Launch", exact=True).select_option(value="demo-next")
        await expect(page.get_by_role("heading", name=re.compile("^Console 5"))).to_be_visible()
        await expect(page.locator("#state")).to_have_text("Registration open")
        await shoot(page, "93-ops-other-launch")

    await browser.run(walk())
    launch = await launches.get_launch(deps, "demo")
    assert launch.admit_rate == 10 and not launch.paused
    kinds = await deps.pool.fetch(
        "SELECT kind FROM events WHERE launch_id = 'demo' AND kind IN"
        " ('launch.pause', 'launch.resume', 'launch.updated') ORDER BY id"
    )
    assert [k["kind"] for k in kinds] == ["launch.updated", "launch.pause", "launch.resume"]
