"""Staff pages in a real browser against the real app: the pickup desk collects a
code once (a second desk is told when and by whom), an agent cancels and the unit
comes back, and the operator's rate change moves the waiting room's estimate."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.async_api import expect

from service.admin import launches
from service.admin.models import LaunchUpdate
from service.auth.apikeys import create_key
from service.clock import SystemClock
from service.deps import Deps
from service.queue import registrations
from service.stock import confirm, holds
from service.stock.codes import format_code
from service.stock.models import Reservation
from tests.browser import Browser, browser, no_script_errors, shoot
from tests.serve import selling_launch, serving, tickets_for

__all__ = ["browser", "no_script_errors"]  # fixtures used by name

L = "drop"
A = {"actor": "test", "channel": "admin"}


async def _dress(deps: Deps) -> None:
    """Names people would see, on the plain launch `selling_launch` makes."""
    await deps.pool.execute("UPDATE launches SET name = 'Fairphone 6'")
    await deps.pool.execute("UPDATE stores SET name = 'Berlin Mitte' WHERE id = 'S1'")
    await deps.pool.execute("UPDATE stores SET name = 'Hamburg Altona' WHERE id = 'S2'")
    await deps.pool.execute("UPDATE skus SET name = '128 GB · Forest Green'")
    names = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra"]
    for i, name in enumerate(names):
        await deps.pool.execute(
            "UPDATE registrations SET name = $1 WHERE email = $2", name, f"shopper{i}@example.com"
        )


async def _buy(deps: Deps, registration: int, store: str = "S1") -> Reservation:
    hold = await holds.reserve(deps, L, registration, store, "K1")
    return await confirm.confirm(deps, L, registration, hold.hold_id)


async def _sign_in(page: Any, path: str, key: str) -> None:
    await page.goto(path)
    await expect(page.get_by_role("heading", name="Staff sign-in")).to_be_visible()
    await page.get_by_label("Access key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"**{path}")


async def test_pickup_desk_collects_once(
    deps: Deps, browser: Browser, no_script_errors: None
) -> None:
    deps.clock = SystemClock()  # the server runs on real time
    regs = await selling_launch(deps, stores=("S1", "S2"), units=5, registrations=4)
    await _dress(deps)
    mine = [await _buy(deps, r) for r in regs[:3]]
    await _buy(deps, regs[3], "S2")  # another store's: never on this desk's list
    key = await create_key(deps.pool, "staff", store_id="S1", label="Desk 1")
    code = format_code(mine[0].code)

    with serving(deps.settings) as base:
        desk = await browser.new_page(base)
        other = await browser.new_page(base, phone=True)

        async def sign_in() -> None:
            await desk.goto(f"/desk/{L}")  # not signed in: the sign-in page, then back here
            await expect(desk).to_have_url(re.compile(r"/staff/login\?next="))
            await desk.get_by_label("Access key").fill("fd_nope_nope")
            await desk.get_by_role("button", name="Sign in").click()
            await expect(desk.get_by_role("alert")).to_contain_text("unknown or revoked")
            await shoot(desk, "20-sign-in-failed")
            await desk.get_by_label("Access key").fill(key)
            await desk.get_by_role("button", name="Sign in").click()
            await expect(desk.get_by_role("heading", name="Berlin Mitte")).to_be_visible()
            await expect(desk.locator("#n-expected")).to_have_text("3")
            await _sign_in(other, f"/desk/{L}", key)

        await browser.run(sign_in())
        cookies = await browser.run(desk.context.cookies())
        cookie = next(c for c in cookies if c["name"] == "fd_key")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

        async def look_up(page: Any, typed: str) -> None:
            field = page.get_by_label(re.compile("^Pickup code"))
            await field.fill(typed)
            await field.press("Enter")  # what a scanner sends after the code
            await expect(page.locator("#result-name")).to_have_text("Ada Lovelace")
            await expect(page.locator("#result-status")).to_have_text("confirmed")

        # Both desks have the card up; the scanner's lower case without hyphens is fine.
        await browser.run(look_up(desk, code.replace("-", "").lower()))
        await browser.run(look_up(other, code))

        async def collect() -> None:
            await shoot(desk, "21-desk-card")
            await desk.get_by_role("button", name="Hand over and mark collected").click()
            await expect(desk.locator("#result-note")).to_have_text(
                "Collected. Hand the unit over."
            )
            await expect(desk.locator("#n-collected")).to_have_text("1")
            await expect(desk.locator("#n-outstanding")).to_have_text("2")
            assert await desk.evaluate("document.activeElement.id") == "code", "ready for the next"
            await shoot(desk, "22-desk-collected")

        await browser.run(collect())

        async def second_attempt() -> None:
            await other.get_by_role("button", name="Hand over and mark collected").click()
            note = other.locator("#result-note")
            await expect(note).to_contain_text("Already collected")
            await expect(note).to_contain_text("by Desk 1")  # by whom: the key's label
            await expect(note).to_contain_text(re.compile(r"\d\d:\d\d"))  # when
            await expect(
                other.get_by_role("button", name="Hand over and mark collected")
            ).to_be_hidden()
            await shoot(other, "23-desk-already-collected")

        await browser.run(second_attempt())

    status = await deps.pool.fetchval("SELECT status FROM reservations WHERE id = $1", mine[0].id)
    collected = await deps.pool.fetchval(
        "SELECT count(*) FROM events WHERE kind = 'reservation.collected'"
    )
    assert status == "collected" and collected == 1


async def test_agent_cancels_and_the_unit_comes_back(
    deps: Deps, browser: Browser, no_script_errors: None
) -> None:
    deps.clock = SystemClock()
    regs = await selling_launch(deps, stores=("S1",), units=1, registrations=2)
    await _dress(deps)
    bought = await _buy(deps, regs[1])
    key = await create_key(deps.pool, "agent", label="Phone team")

    with serving(deps.settings) as base:

        def available() -> int:
            launch = httpx.get(f"{base}/api/launches/{L}").json()
            return sum(a["available"] for a in launch["availability"])

        assert available() == 0
        page = await browser.new_page(base)

        async def cancel() -> None:
            await _sign_in(page, "/agent", key)
            await page.get_by_label(re.compile("^E-mail, phone")).fill("Shopper1@Example.com")
            await page.get_by_role("button", name="Search").click()
            await expect(page.get_by_role("heading", name="Grace Hopper")).to_be_visible()
            await expect(page.locator(".timeline li")).not_to_have_count(0)
            await shoot(page, "30-agent-customer")
            await page.get_by_role(
                "button", name=f"Cancel reservation {format_code(bought.code)}"
            ).click()
            await page.get_by_role("button", name="Cancel reservation", exact=True).click()
            await expect(page.locator(".cancel-form .error")).to_contain_text("Say why")
            await page.get_by_label("Reason for cancelling").fill(
                "Customer called: bought elsewhere"
            )
            await page.get_by_role("button", name="Cancel reservation", exact=True).click()
            await expect(page.locator("#flash")).to_contain_text("cancelled")
            await expect(page.locator(".badge.cancelled")).to_be_visible()
            await expect(page.locator(".timeline")).to_contain_text("bought elsewhere")
            await shoot(page, "31-agent-cancelled")

        await browser.run(cancel())
        assert available() == 1, "the unit came back"


async def test_agent_moves_a_reservation_and_writes_a_note(
    deps: Deps, browser: Browser, no_script_errors: None
) -> None:
    deps.clock = SystemClock()
    regs = await selling_launch(deps, stores=("S1", "S2"), units=1, registrations=2)
    await _dress(deps)
    bought = await _buy(deps, regs[1])
    code = format_code(bought.code)
    key = await create_key(deps.pool, "agent", label="Phone team")

    with serving(deps.settings) as base:

        def available() -> dict[str, int]:
            launch = httpx.get(f"{base}/api/launches/{L}").json()
            return {a["store_id"]: a["available"] for a in launch["availability"]}

        assert available() == {"S1": 0, "S2": 1}
        page = await browser.new_page(base)

        async def act() -> None:
            await _sign_in(page, "/agent", key)
            await page.get_by_label(re.compile("^E-mail, phone")).fill(code)
            await page.get_by_role("button", name="Search").click()
            await expect(page.get_by_role("heading", name="Grace Hopper")).to_be_visible()

            # The API's refusal is shown as it says it: this launch's pickup has no end.
            await page.get_by_role("button", name=f"Extend pickup of {code}").click()
            await page.get_by_label("Reason for extending").fill("On holiday until Friday")
            await page.get_by_role("button", name="Extend pickup", exact=True).click()
            await expect(page.locator('[data-action="extend"] .error')).to_contain_text(
                "nothing to extend"
            )
            await page.locator('[data-action="extend"]').get_by_role("button", name="Back").click()

            await page.get_by_role("button", name=f"Move reservation {code}").click()
            await page.get_by_label("Move to store").select_option(label="Hamburg Altona")
            await page.get_by_role("button", name="Move reservation", exact=True).click()
            await expect(page.locator('[data-action="move"] .error')).to_contain_text("Say why")
            await page.get_by_label("Reason for moving").fill("Moved to Hamburg")
            await shoot(page, "32-agent-move")
            await page.get_by_role("button", name="Move reservation", exact=True).click()
            await expect(page.locator("#flash")).to_contain_text(f"{code} moved to Hamburg")
            await expect(page.locator(".reservation")).to_contain_text("at Hamburg Altona")
            await expect(page.locator(".timeline")).to_contain_text(
                "moved from Berlin Mitte to Hamburg Altona: Moved to Hamburg"
            )

            await page.get_by_role("button", name="Add note").click()
            await expect(page.locator(".note-form .error")).to_contain_text("Write the note")
            await page.get_by_label("Note for the timeline").fill("Prefers a call after 5 pm")
            await page.get_by_role("button", name="Add note").click()
            await expect(page.locator("#flash")).to_contain_text("Note added")
            await expect(page.locator(".timeline li").last).to_contain_text(
                "Prefers a call after 5 pm"
            )
            await shoot(page, "33-agent-moved-and-noted")

        await browser.run(act())
        assert available() == {"S1": 1, "S2": 0}, "the old store's unit came back"

    row = await deps.pool.fetchrow("SELECT store_id, status FROM reservations")
    assert (row["store_id"], row["status"]) == ("S2", "confirmed")
    notes = await deps.pool.fetch(
        "SELECT actor, channel, data FROM events WHERE kind = $1", "customer.note"
    )
    assert [(n["channel"], n["data"]["note"]) for n in notes] == [
        ("phone", "Prefers a call after 5 pm")
    ]


async def test_operator_rate_moves_the_waiting_rooms_estimate(
    deps: Deps, browser: Browser, no_script_errors: None
) -> None:
    deps.clock = SystemClock()
    n = 3000
    regs = await selling_launch(deps, stores=("S1", "S2"), units=2000, registrations=n)
    await _dress(deps)
    await launches.update_launch(deps, L, LaunchUpdate(admit_rate=1.0, active_cap=100_000), **A)
    await tickets_for(deps, L, regs[:-1])  # everyone else is ahead
    token = (await registrations.issue_token(deps, L, regs[-1])).token
    operator_key = await create_key(deps.pool, "operator", label="War room")

    with serving(deps.settings) as base:
        shopper = await browser.new_page(base, phone=True)
        ops = await browser.new_page(base)

        async def wait_slowly() -> None:
            await shopper.context.add_cookies([{"name": "fd_shopper", "value": token, "url": base}])

            async def refuse(route: Any) -> None:
                await route.abort()

            # A proxy that breaks event streams: the page polls at the server's pace instead.
            await shopper.route("**/queue/events", refuse)
            await shopper.goto(f"/launches/{L}/queue")
            await expect(shopper.locator("#view-waiting")).to_be_visible()
            await expect(shopper.locator("#live")).to_have_class(re.compile("polling"))
            # One a second for ~3000 people: the estimate is most of an hour.
            await shopper.wait_for_function(
                "() => Number(document.getElementById('eta').dataset.seconds) > 1000",
                timeout=20_000,
            )
            await shoot(shopper, "12-waiting-long")

        await browser.run(wait_slowly())

        async def speed_up() -> None:
            await _sign_in(ops, f"/ops/{L}", operator_key)
            await expect(ops.locator("#c-checked_in")).to_have_text(f"{n:,}")
            await ops.get_by_label(re.compile("^Admit rate")).fill("10")
            await ops.get_by_role("button", name="Set rate").click()
            await expect(ops.locator("#flash")).to_contain_text("10 per second")
            await expect(ops.locator("#rate-set")).to_have_text("10")

        await browser.run(speed_up())

        async def estimate_drops() -> None:
            await shopper.wait_for_function(
                "() => { const s = document.getElementById('eta').dataset.seconds;"
                " return s !== '' && Number(s) < 600; }",
                timeout=60_000,  # the next poll is at most 30 s away
            )
            await ops.wait_for_function(
                "() => parseFloat(document.getElementById('rate-measured').textContent) > 5"
            )
            await shoot(ops, "40-operations")

        await browser.run(estimate_drops())
