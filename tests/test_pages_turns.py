"""A shopper's turn in a real browser, told as it happens: the picker starts at the
store chosen at sign-up; a customer who may take two is sent back for the second and
told how many are left; a reservation confirmed and cancelled is said to be
cancelled; every time shown carries its zone."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import expect

from service.clock import SystemClock
from service.deps import Deps
from service.queue.registrations import issue_token
from tests.browser import Browser, browser, no_script_errors, shoot
from tests.serve import advance, selling_launch, serving, stocked_launch

__all__ = ["browser", "no_script_errors"]  # fixtures used by name

L = "drop"
ZONE = re.compile(r"\b(GMT|BST|UTC)\b")  # the browser runs in Europe/London


async def _dress(deps: Deps, preferred: str) -> None:
    await deps.pool.execute("UPDATE launches SET name = 'Fairphone 6'")
    await deps.pool.execute("UPDATE stores SET name = 'Berlin Mitte' WHERE id = 'S1'")
    await deps.pool.execute("UPDATE stores SET name = 'Hamburg Altona' WHERE id = 'S2'")
    await deps.pool.execute("UPDATE skus SET name = '128 GB · Forest Green'")
    await deps.pool.execute("UPDATE registrations SET preferred_store = $1", preferred)


async def _signed_in(deps: Deps, browser: Browser, base: str, registration: int) -> Any:
    page = await browser.new_page(base, phone=True)
    token = (await issue_token(deps, L, registration)).token
    await browser.run(
        page.context.add_cookies([{"name": "fd_shopper", "value": token, "url": base}])
    )
    return page


async def _hold_and_confirm(page: Any) -> str:
    await page.get_by_role("button", name=re.compile("^Hold one")).click()
    await expect(page.locator("#view-hold")).to_be_visible()
    await page.get_by_role("button", name="Confirm reservation").click()
    await expect(page.get_by_role("heading", name="Your reservation")).to_be_visible()
    return str(await page.locator(".code").last.inner_text())


async def test_two_in_one_turn_from_the_preferred_store(
    deps: Deps, browser: Browser, no_script_errors: None
) -> None:
    deps.clock = SystemClock()  # the server runs on real time
    regs = await selling_launch(deps, stores=("S1", "S2"), units=3, registrations=1, limit=2)
    await _dress(deps, preferred="S2")

    with serving(deps.settings) as base:
        page = await _signed_in(deps, browser, base, regs[0])

        async def journey() -> None:
            await page.goto(f"/launches/{L}/queue")
            await expect(page.locator("#view-turn")).to_be_visible()
            checked = page.locator("#options input:checked")
            await expect(checked).to_have_count(1)
            # The store chosen at sign-up is the one picked, and says so.
            legend = page.locator("fieldset", has=page.locator("input:checked")).locator("legend")
            await expect(legend).to_contain_text("Hamburg Altona")
            await expect(legend).to_contain_text("your preferred store")
            await shoot(page, "50-turn-preferred-store")

            first = await _hold_and_confirm(page)
            more = page.locator("#more")
            await expect(more).to_contain_text("up to 2")
            for time in await page.locator("time[data-local]:not([datetime=''])").all():
                await expect(time).to_have_text(ZONE)
            await shoot(page, "51-reservation-one-of-two")

            await more.get_by_role("link", name="go back to the waiting room").click()
            await expect(page.locator("#view-turn")).to_be_visible()
            await expect(page.locator("#view-turn")).to_contain_text("1 of the 2")
            await expect(page.locator("#turn-left")).to_contain_text("to place a hold")
            await shoot(page, "52-still-your-turn")

            second = await _hold_and_confirm(page)
            await expect(page.locator(".code")).to_have_count(2)
            await expect(page.locator("#more")).to_have_count(0)
            await page.goto(f"/launches/{L}/queue")
            over = page.locator("#view-lapsed")
            await expect(over).to_be_visible()
            await expect(over).to_contain_text(f"{first} and {second}")
            await shoot(page, "53-turn-over-two-reserved")

        await browser.run(journey())

    rows = await deps.pool.fetch("SELECT store_id, status FROM reservations ORDER BY id")
    assert [(r["store_id"], r["status"]) for r in rows] == [("S2", "confirmed")] * 2


async def test_a_cancelled_reservation_is_called_cancelled(
    deps: Deps, browser: Browser, no_script_errors: None
) -> None:
    deps.clock = SystemClock()
    regs = await selling_launch(deps, stores=("S1", "S2"), units=3, registrations=1, limit=1)
    await _dress(deps, preferred="S1")

    with serving(deps.settings) as base:
        page = await _signed_in(deps, browser, base, regs[0])

        async def cancel_then_look() -> None:
            await page.goto(f"/launches/{L}/queue")
            await expect(page.locator("#view-turn")).to_be_visible()
            code = await _hold_and_confirm(page)
            await expect(page.locator("#more")).to_have_count(0)  # one per customer
            await page.get_by_role("button", name="Cancel this reservation…").click()
            await page.get_by_role("button", name="Yes, cancel it").click()
            await expect(page.locator(".badge")).to_have_text("cancelled")
            await page.goto(f"/launches/{L}/queue")
            over = page.locator("#view-lapsed")
            await expect(over).to_be_visible()
            await expect(over).to_contain_text(f"{code} was cancelled")
            await expect(over).to_contain_text("went back on sale")
            await expect(over).not_to_contain_text("without")
            await shoot(page, "54-cancelled-turn-over")

        await browser.run(cancel_then_look())


async def test_a_turn_handed_back_from_the_page_lets_the_next_in(
    deps: Deps, browser: Browser, no_script_errors: None
) -> None:
    """One at a time (active cap 1): the first shopper hands their turn back from the
    page, asked once more; the second is let in at once, not a window later."""
    deps.clock = SystemClock()
    regs = await selling_launch(deps, units=3, registrations=2, active_cap=1)
    await _dress(deps, preferred="S1")
    await deps.pool.execute("UPDATE launches SET admission_window_seconds = 600")

    with serving(deps.settings) as base:
        first = await _signed_in(deps, browser, base, regs[0])
        second = await _signed_in(deps, browser, base, regs[1])

        async def journey() -> None:
            await first.goto(f"/launches/{L}/queue")
            await expect(first.locator("#view-turn")).to_be_visible()
            await second.goto(f"/launches/{L}/queue")
            await expect(second.locator("#view-waiting")).to_be_visible()
            await expect(second.locator("#leave-button")).to_have_text("Leave the queue")

            await first.get_by_role("button", name="Hand back my turn").click()
            await expect(first.locator("#leave-sure")).to_be_visible()
            await shoot(first, "54-hand-back-the-turn")
            await first.get_by_role("button", name="Yes, hand it back").click()
            await expect(first.locator("#view-left")).to_be_visible()
            await expect(first.locator("#view-left")).to_contain_text("cannot queue again")
            await expect(first.locator("#leave-box")).to_be_hidden()
            await shoot(first, "55-left-the-queue")

            await expect(second.locator("#view-turn")).to_be_visible()
            await first.reload()
            await expect(first.locator("#view-left")).to_be_visible()

        await browser.run(journey())

    kinds = await deps.pool.fetch("SELECT data FROM events WHERE kind = 'queue.left'")
    assert [r["data"] for r in kinds] == [{"rank": 0, "from": "turn"}]


async def test_leaving_the_prequeue_on_one_device_shows_left_on_the_other(
    deps: Deps, browser: Browser, no_script_errors: None
) -> None:
    """Before the draw: the shopper leaves on their phone; the page still open on their
    laptop says they left (not "checked in, the order is drawn when the sale starts")."""
    deps.clock = SystemClock()
    regs = await stocked_launch(deps, L, units=3, registrations=2)
    await _dress(deps, preferred="S1")
    await advance(deps, L, "checkin_open")

    with serving(deps.settings) as base:
        phone = await _signed_in(deps, browser, base, regs[0])
        laptop = await _signed_in(deps, browser, base, regs[0])

        async def journey() -> None:
            await phone.goto(f"/launches/{L}/queue")
            await expect(phone.locator("#view-prequeue")).to_be_visible()
            await laptop.goto(f"/launches/{L}/queue")
            await expect(laptop.locator("#view-prequeue")).to_be_visible()

            await phone.get_by_role("button", name="Leave the queue").click()
            await phone.get_by_role("button", name="Yes, leave").click()
            await expect(phone.locator("#view-left")).to_be_visible()

            await expect(laptop.locator("#view-left")).to_be_visible()
            await expect(laptop.locator("#view-left")).to_contain_text("cannot queue again")
            await expect(laptop.locator("#view-prequeue")).to_be_hidden()
            await shoot(laptop, "56-left-the-prequeue-elsewhere")

        await browser.run(journey())
