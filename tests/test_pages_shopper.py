"""The shopper's pages in a real browser, against the real app, Postgres, Redis and
SMTP: register, verify by the e-mailed link, check in, wait, get admitted, hold,
confirm and see the code; the second shopper is told it is sold out."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.async_api import expect

from service.admin import allocations, launches
from service.admin.models import ItemCreate, LaunchCreate, Transition
from service.clock import SystemClock
from service.deps import Deps
from service.notify import send_pending
from service.queue import tickets
from service.queue.registrations import issue_token
from service.stock import confirm, holds, reservations
from service.stock.codes import format_code
from tests.browser import Browser, browser, no_script_errors, shoot
from tests.mail import smtp_server
from tests.serve import assert_consistent, selling_launch, serving, tickets_for

__all__ = ["browser", "no_script_errors"]  # fixtures used by name

A = {"actor": "marketing", "channel": "admin"}
L = "fairphone"


async def _launch(deps: Deps) -> None:
    sale = datetime.now(UTC) + timedelta(hours=1, minutes=30)
    await launches.create_launch(
        deps,
        LaunchCreate(
            id=L,
            name="Fairphone 6",
            hold_seconds=300,
            admit_rate=50,
            active_cap=10,
            registration_closes_at=sale - timedelta(hours=1),
            checkin_opens_at=sale - timedelta(minutes=30),
            sale_starts_at=sale,
            pickup_starts_at=sale + timedelta(days=2),
        ),
        **A,
    )
    for store_id, name in (("ber", "Berlin Mitte"), ("ham", "Hamburg Altona")):
        await launches.add_item(deps, L, "stores", ItemCreate(id=store_id, name=name), **A)
    for sku_id, name in (("k128", "128 GB · Forest Green"), ("k256", "256 GB · Cloud White")):
        await launches.add_item(deps, L, "skus", ItemCreate(id=sku_id, name=name), **A)
    for store_id in ("ber", "ham"):
        for sku_id in ("k128", "k256"):
            units = 1 if (store_id, sku_id) == ("ber", "k128") else 0
            await allocations.set_allocation(deps, L, store_id, sku_id, units, **A)


async def _advance(deps: Deps, to: str) -> None:
    await launches.transition(deps, L, Transition(action="advance", to=to), **A)  # type: ignore[arg-type]


def _link(message: Any) -> str:
    text = message.get_body(("plain",)).get_content()
    found = re.search(r"(http://\S+/verify\?token=[\w.\-]+)", text)
    assert found, text
    return found.group(1)


async def test_register_wait_hold_confirm_and_sold_out(
    deps: Deps, browser: Browser, no_script_errors: None
) -> None:
    deps.clock = SystemClock()  # the server runs on real time
    await _launch(deps)
    await _advance(deps, "registration_open")
    with smtp_server(deps) as inbox, serving(deps.settings) as base:
        first = await browser.new_page(base, phone=True)
        second = await browser.new_page(base)

        async def register(page: Any, email: str, name: str, shots: bool) -> None:
            await page.goto(f"/launches/{L}")
            await expect(page.get_by_role("heading", name="Fairphone 6")).to_be_visible()
            if shots:
                await shoot(page, "01-landing")
                await page.get_by_label("E-mail address").fill("not-an-address")
                await page.get_by_role("button", name="Register").click()
                await expect(page.locator("#email-error")).to_contain_text("e-mail address")
                # The field to fix gets the focus (the page itself may be in the background).
                assert await page.evaluate("document.activeElement.id") == "email"
                await shoot(page, "02-landing-invalid")
            await page.get_by_label("E-mail address").fill(email)
            await page.get_by_label("Full name").fill(name)
            await page.get_by_label("Preferred store").select_option(label="Berlin Mitte")
            await page.get_by_role("button", name="Register").click()
            await expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()
            await expect(page.locator("#sent-to")).to_have_text(email)
            if shots:
                await shoot(page, "03-check-your-email")

        await browser.run(register(first, "ada@example.com", "Ada Lovelace", True))
        await browser.run(register(second, "grace@example.com", "Grace Hopper", False))
        assert await send_pending(deps) == 2
        links = {m["To"].addresses[0].addr_spec: _link(m) for m in inbox.messages}
        assert set(links) == {"ada@example.com", "grace@example.com"}

        async def verify(page: Any, link: str, shots: bool) -> None:
            await page.goto(link)  # the link in the e-mail (the API redirects a browser)
            await expect(page.get_by_role("heading", name="You are registered")).to_be_visible()
            if shots:
                await shoot(page, "04-verified")

        await browser.run(verify(first, links["ada@example.com"], True))
        await browser.run(verify(second, links["grace@example.com"], False))

        async def broken_link(page: Any) -> None:
            await page.goto(f"/launches/{L}/verify?token=forged")
            await expect(
                page.get_by_role("heading", name="This link does not work")
            ).to_be_visible()
            await shoot(page, "05-verify-failed")
            await page.goto(links["ada@example.com"])  # clicked twice: still fine
            await expect(page.get_by_role("heading", name="You are registered")).to_be_visible()

        await browser.run(broken_link(first))

        await _advance(deps, "registration_closed")
        await _advance(deps, "checkin_open")

        async def check_in(page: Any, shots: bool) -> None:
            await page.goto(f"/launches/{L}/queue")
            await expect(page.locator("#view-prequeue")).to_be_visible()
            await expect(page.locator("#pre-countdown")).to_have_text(
                re.compile(r"^1:(29|30):\d\d$")
            )
            if shots:
                await shoot(page, "06-prequeue")

        await browser.run(check_in(first, True))
        await browser.run(check_in(second, False))

        await _advance(deps, "selling")  # the draw: one of the two is first, at random

        async def who_is_admitted() -> tuple[Any, Any]:
            waits = {
                asyncio.ensure_future(p.wait_for_selector("#view-turn", state="visible")): p
                for p in (first, second)
            }
            done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            winner = waits[done.pop()]
            return winner, second if winner is first else first

        winner, waiter = await browser.run(who_is_admitted())

        async def waiting(page: Any) -> None:
            # Only one unit: admission stops at the stock, so the other waits, first in line.
            await expect(page.locator("#view-waiting")).to_be_visible()
            await expect(page.locator("#position")).to_have_text("1")
            await expect(page.locator("#ahead")).to_have_text("0")
            # The page took the fresh ticket the draw gave: it carries the drawn place.
            cookie = next(c for c in await page.context.cookies() if c["name"] == "fd_ticket")
            assert tickets.read(deps, cookie["value"], L).rank == 1
            await shoot(page, "07-waiting")
            await page.reload()  # the ticket is in a cookie: the same place comes back
            await expect(page.locator("#position")).to_have_text("1")

        await browser.run(waiting(waiter))

        async def hold_and_confirm(page: Any) -> str:
            options = page.locator("#options")
            await expect(options.get_by_text("1 left")).to_be_visible()
            await expect(options.get_by_text("None left")).to_have_count(3)
            await shoot(page, "08-your-turn")
            await page.get_by_label("128 GB · Forest Green").first.check()
            await page.get_by_role("button", name=re.compile("^Hold one")).click()
            await expect(page.locator("#view-hold")).to_be_visible()
            await expect(page.locator("#hold-where")).to_have_text("at Berlin Mitte")
            await expect(page.locator("#hold-countdown")).to_have_text(re.compile(r"^[45]:\d\d$"))
            await shoot(page, "09-hold")
            await page.get_by_role("button", name="Confirm reservation").click()
            await expect(page.get_by_role("heading", name="Your reservation")).to_be_visible()
            await expect(page.locator(".qr svg")).to_be_visible()
            code = str(await page.locator(".code").inner_text())
            # The whole story under the code, oldest first, in plain words.
            history = page.locator("#history li")
            await expect(history.first).to_contain_text("Registered")
            await expect(history.first).to_contain_text("online")
            await expect(page.locator("#history")).to_contain_text(
                f"Reservation {code} confirmed at Berlin Mitte"
            )
            # The launch's time (UTC), with its zone; the reader's own (London, the
            # same offset in December) would follow only where it differs.
            await expect(history.locator("time[data-local]").first).to_contain_text(
                re.compile(r"\d\d:\d\d (UTC|GMT|BST)")
            )
            await shoot(page, "10-reservation")
            ics = await page.request.get(
                await page.get_by_role("link", name="Add pickup to calendar").get_attribute("href")
            )
            assert ics.ok and ics.headers["content-type"].startswith("text/calendar")
            body = await ics.text()
            unfolded = body.replace("\r\n ", "")  # RFC 5545 folds long lines
            assert f"Reservation code: {code}" in unfolded and "LOCATION:Berlin Mitte" in unfolded
            assert "DTSTART:" in body and body.endswith("END:VCALENDAR\r\n")
            return code

        shown = await browser.run(hold_and_confirm(winner))

        async def sold_out(page: Any) -> None:
            await expect(page.locator("#view-soldout")).to_be_visible()
            await expect(page.locator("#view-soldout")).to_contain_text("come back")
            await shoot(page, "11-sold-out")

        await browser.run(sold_out(waiter))

    registration_of = {
        r["email"]: r["id"] for r in await deps.pool.fetch("SELECT id, email FROM registrations")
    }
    found = [
        r
        for rid in registration_of.values()
        for r in await reservations.for_registration(deps, L, rid)
    ]
    assert len(found) == 1 and found[0].status == "confirmed"
    assert shown == format_code(found[0].code), "the page shows the code Postgres committed"


async def test_hold_expired_and_limit_reached_are_said_plainly(
    deps: Deps, browser: Browser, no_script_errors: None
) -> None:
    deps.clock = SystemClock()  # the server runs on real time
    regs = await selling_launch(deps, L, units=5, registrations=2, hold_seconds=10)
    await deps.pool.execute("UPDATE launches SET name = 'Fairphone 6'")
    await tickets_for(deps, L, regs)  # both admitted at once (rate is high)

    with serving(deps.settings) as base:
        bought, late = [await browser.new_page(base, phone=True) for _ in range(2)]
        for page, reg in ((bought, regs[0]), (late, regs[1])):
            token = (await issue_token(deps, L, reg)).token
            await browser.run(
                page.context.add_cookies([{"name": "fd_shopper", "value": token, "url": base}])
            )

        async def picking() -> None:
            await bought.goto(f"/launches/{L}/queue")
            await expect(bought.locator("#view-turn")).to_be_visible()

            async def refuse(route: Any) -> None:
                await route.abort()

            # The page has not heard yet (its next update is seconds away) ...
            await bought.route("**/queue/*", refuse)

        await browser.run(picking())
        # ... when customer service books the one unit a customer may have on the phone.
        hold = await holds.reserve(deps, L, regs[0], "S1", "K1")
        await confirm.confirm(deps, L, regs[0], hold.hold_id)

        async def limit_reached() -> None:
            await bought.get_by_role("button", name=re.compile("^Hold one")).click()
            flash = bought.locator("#flash")
            await expect(flash).to_contain_text("as many as one customer may")
            await expect(flash.get_by_role("link", name="See your reservation")).to_be_visible()
            await shoot(bought, "13-limit-reached")
            await bought.unroute("**/queue/*")
            await bought.reload()  # the waiting room now says the turn is over, and why
            await expect(bought.locator("#reserved")).to_contain_text("You have a reservation")
            await expect(bought.locator("#view-lapsed")).to_contain_text("you have reservation")
            await bought.get_by_role("link", name="See your pickup code").click()
            await bought.get_by_role("button", name="Cancel this reservation…").click()
            await expect(bought.get_by_role("alertdialog")).to_contain_text("cannot be undone")
            await shoot(bought, "15-cancel-confirm")
            await bought.get_by_role("button", name="Yes, cancel it").click()
            await expect(bought.locator(".badge")).to_have_text("cancelled")
            await expect(
                bought.get_by_role("button", name="Cancel this reservation…")
            ).to_have_count(0)
            history = bought.locator("#history li")
            await expect(history.filter(has_text="confirmed at")).to_have_count(1)
            await expect(history.last).to_contain_text(re.compile(r"^.*Reservation \S+ cancelled"))
            await shoot(bought, "16-reservation-cancelled")

        async def hold_expires() -> None:
            await late.goto(f"/launches/{L}/queue")
            await late.get_by_role("button", name=re.compile("^Hold one")).click()
            await expect(late.locator("#view-hold")).to_be_visible()
            await expect(late.locator("#hold-countdown")).to_have_text(re.compile(r"^0:(0\d|10)$"))
            # Ten seconds on the real clock: the page says what happened when they run out.
            await expect(late.locator("#flash")).to_contain_text(
                "Your hold expired", timeout=20_000
            )
            await expect(late.locator("#view-hold")).to_be_hidden()
            # The admission was used by the hold: the page does not offer a turn that is gone.
            await expect(late.locator("#view-lapsed")).to_contain_text("A turn covers one hold")
            await shoot(late, "14-hold-expired")

        await browser.run(limit_reached())
        await browser.run(hold_expires())

    status = await deps.pool.fetchval(
        "SELECT status FROM reservations WHERE registration_id = $1", regs[0]
    )
    assert status == "cancelled"
    # Its unit came back (the lapsed hold's returns with the next script that touches it).
    assert (await assert_consistent(deps, L))["S1:K1"][3] == 0
