"""Staff are told the truth, in a real browser: the pickup desk on a phone shows every
reservation's status, and Collect is off outside the pickup window, which is shown in
local time with its zone."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.async_api import expect

from service.admin import launches
from service.admin.models import LaunchUpdate
from service.auth.apikeys import create_key
from service.clock import SystemClock
from service.deps import Deps
from service.notify.schedule import notify_admitted
from service.queue.places import drain_places
from service.queue.status import QueueWatch
from service.stock import confirm, holds
from service.stock.codes import format_code
from service.stock.hold_log import drain_events
from tests.browser import Browser, browser, no_script_errors, shoot
from tests.serve import selling_launch, serving, tickets_for
from tests.test_pages_console import _dress, _sign_in

__all__ = ["browser", "no_script_errors"]  # fixtures used by name

L = "drop"
ADMIN = {"actor": "test", "channel": "admin"}
ZONE = re.compile(r"\b(GMT|BST)\b")  # the browser runs in Europe/London


async def _fits(page: Any, selector: str) -> list[str]:
    """The elements matching `selector` that are not wholly on the screen."""
    out: list[str] = await page.evaluate(
        """(sel) => [...document.querySelectorAll(sel)]
          .filter((el) => { const r = el.getBoundingClientRect();
            return r.width === 0 || r.left < 0 || r.right > window.innerWidth; })
          .map((el) => el.textContent)""",
        selector,
    )
    return out


async def until_admitted_here(deps: Deps, watch: QueueWatch, n: int) -> None:
    """Refresh until `n` are admitted (admission moves with the real clock)."""
    for _ in range(200):
        if (await watch.refresh(L)).admitted >= n:
            return
        await asyncio.sleep(0.02)  # a retry interval, not a wait for something to happen
    raise AssertionError(f"never admitted {n}")


async def test_the_desk_on_a_phone_and_the_pickup_window(
    deps: Deps, browser: Browser, no_script_errors: None
) -> None:
    deps.clock = SystemClock()
    regs = await selling_launch(deps, stores=("S1",), units=5, registrations=3)
    await _dress(deps)
    made = []
    for r in regs:
        hold = await holds.reserve(deps, L, r, "S1", "K1")
        made.append(await confirm.confirm(deps, L, r, hold.hold_id))
    opens = datetime.now(UTC) + timedelta(days=2)
    await deps.pool.execute("UPDATE launches SET pickup_starts_at = $1", opens)
    key = await create_key(deps.pool, "staff", store_id="S1", label="Desk 1")
    code = format_code(made[0].code)

    with serving(deps.settings) as base:
        page = await browser.new_page(base, phone=True)

        async def look_up() -> None:
            await _sign_in(page, f"/desk/{L}", key)
            await expect(page.locator("#pickups tr")).to_have_count(3)
            # Every row's status is on the screen of a phone; the list scrolls no sideways.
            assert await _fits(page, "#pickups .badge") == []
            wrap = page.locator(".table-wrap")
            assert await wrap.evaluate("(el) => el.scrollWidth <= el.clientWidth")
            field = page.get_by_label(re.compile("^Pickup code"))
            await field.fill(code)
            await field.press("Enter")
            collect = page.get_by_role("button", name="Hand over and mark collected")
            await expect(collect).to_be_disabled()
            note = page.locator("#result-note")
            await expect(note).to_contain_text("Pickup opens")
            await expect(note).to_have_text(ZONE)
            await expect(page.locator("#result-window")).to_have_text(ZONE)
            await shoot(page, "24-desk-before-the-window")

        await browser.run(look_up())
        ended = datetime.now(UTC) - timedelta(minutes=1)
        await deps.pool.execute(
            "UPDATE launches SET pickup_starts_at = $1, pickup_ends_at = $2",
            ended - timedelta(hours=8),
            ended,
        )

        async def after_and_during() -> None:
            await page.reload()
            field = page.get_by_label(re.compile("^Pickup code"))
            await field.fill(code)
            await field.press("Enter")
            collect = page.get_by_role("button", name="Hand over and mark collected")
            await expect(collect).to_be_disabled()
            await expect(page.locator("#result-note")).to_contain_text("window ended")
            await shoot(page, "25-desk-after-the-window")

        await browser.run(after_and_during())
        await deps.pool.execute("UPDATE launches SET pickup_ends_at = NULL")

        async def open_window() -> None:
            await page.reload()
            field = page.get_by_label(re.compile("^Pickup code"))
            await field.fill(code)
            await field.press("Enter")
            collect = page.get_by_role("button", name="Hand over and mark collected")
            await expect(collect).to_be_enabled()
            await collect.click()
            await expect(page.locator("#result-note")).to_have_text(
                "Collected. Hand the unit over."
            )

        await browser.run(open_window())


async def test_the_agents_timeline_tells_the_queue_story_in_plain_words(
    deps: Deps, browser: Browser, no_script_errors: None
) -> None:
    deps.clock = SystemClock()
    regs = await selling_launch(deps, stores=("S1", "S2"), units=5, registrations=2)
    await _dress(deps)
    await tickets_for(deps, L, regs)  # places 1 and 2, in order of arrival
    await drain_places(deps, L)
    watch = QueueWatch(deps)
    await watch.refresh(L)
    await until_admitted_here(deps, watch, 2)
    assert await notify_admitted(deps, L) == 2  # "your turn", with the time to hold
    hold = await holds.reserve(deps, L, regs[0], "S1", "K1", rank=0)
    bought = await confirm.confirm(deps, L, regs[0], hold.hold_id)
    await drain_events(deps, L)
    # The second let the time run out: say their turn was a tenth of a second long.
    await deps.pool.execute(
        "UPDATE outbox SET payload = jsonb_set(payload, '{until_ms}',"
        " to_jsonb((extract(epoch FROM created_at) * 1000)::bigint + 100)) WHERE dedupe_key = $1",
        f"your_turn:{L}:{regs[1]}",
    )
    await deps.pool.execute(
        "UPDATE events SET data = jsonb_set(data, '{until_ms}',"
        " to_jsonb((extract(epoch FROM at) * 1000)::bigint + 100))"
        " WHERE kind = 'queue.admitted' AND subject = $1",
        f"registration:{regs[1]}",
    )
    key = await create_key(deps.pool, "agent", label="Phone team")
    code = format_code(bought.code)

    with serving(deps.settings) as base:
        page = await browser.new_page(base)

        async def read(query: str, name: str) -> list[str]:
            await page.get_by_label(re.compile("^E-mail, phone")).fill(query)
            await page.get_by_role("button", name="Search").click()
            await expect(page.get_by_role("heading", name=name)).to_be_visible()
            return [str(t) for t in await page.locator(".timeline li").all_inner_texts()]

        async def story() -> tuple[list[str], list[str]]:
            await _sign_in(page, "/agent", key)
            ada = await read(code, "Ada Lovelace")
            await shoot(page, "34-agent-queue-story")
            grace = await read("shopper1@example.com", "Grace Hopper")
            await shoot(page, "35-agent-turn-lapsed")
            return ada, grace

        ada, grace = await browser.run(story())

    text = "\n".join(ada + grace)
    assert not re.search(r"\b[a-z]+\.[a-z_]+\b|registration:\d|key:[0-9a-f]", text), text
    assert any("Checked in at place 1" in line for line in ada), ada
    assert any("Turn came" in line for line in ada), ada
    assert any(f"Reservation {code} confirmed at Berlin Mitte" in line for line in ada), ada
    assert any("the customer" in line for line in ada), ada
    assert any("Checked in at place 2" in line for line in grace), grace
    assert any("Turn lapsed" in line for line in grace), grace
    for line in ada + grace:
        assert ZONE.search(line), line


async def test_the_operator_is_told_why_admission_is_slow_in_plain_words(
    deps: Deps, browser: Browser, no_script_errors: None
) -> None:
    deps.clock = SystemClock()
    regs = await selling_launch(deps, stores=("S1", "S2"), units=50, registrations=20)
    await _dress(deps)
    await launches.update_launch(deps, L, LaunchUpdate(admit_rate=5.0, active_cap=2), **ADMIN)
    await tickets_for(deps, L, regs)  # nobody holds: two are admitted, then the cap holds
    key = await create_key(deps.pool, "operator", label="War room")

    with serving(deps.settings) as base:
        page = await browser.new_page(base, phone=True)

        async def watch_it() -> None:
            await _sign_in(page, f"/ops/{L}", key)
            why = page.locator("#held-back")
            await expect(why).to_be_visible(timeout=20_000)
            await expect(why).to_contain_text("The active cap is reached: 2 of 2")
            await expect(why).to_contain_text("have not held yet")
            # A time axis under each chart: its start, middle and now, with the zone.
            axis = page.locator("#axis-admitted span")
            await expect(axis).to_have_count(3)
            for label in await axis.all_inner_texts():
                assert re.search(r"\d\d:\d\d:\d\d (GMT|BST)$", label), label
            wrap = page.locator(".table-wrap")
            assert await wrap.evaluate("(el) => el.scrollWidth <= el.clientWidth"), "stock fits"
            await shoot(page, "41-operations-held-back")

            rate = page.get_by_label(re.compile("^Admit rate"))
            for typed in ("-5", "", "1e9", "200000"):
                await rate.fill(typed)
                await page.get_by_role("button", name="Set rate").click()
                await expect(page.locator("#admit_rate-error")).to_have_text(
                    "The admit rate must be a number of people per second from 0 to 100,000."
                )
            cap = page.get_by_label(re.compile("^Active cap"))
            await cap.fill("2.5")
            await page.get_by_role("button", name="Set cap").click()
            await expect(page.locator("#active_cap-error")).to_contain_text("a whole number")
            await shoot(page, "42-operations-invalid")
            await cap.fill("5")
            await page.get_by_role("button", name="Set cap").click()
            await expect(page.locator("#flash")).to_have_text("Active cap set to 5.")
            await expect(page.locator("#active_cap-error")).to_be_hidden()

        await browser.run(watch_it())
    assert (await launches.get_launch(deps, L)).active_cap == 5


async def test_the_dashboard_names_the_stock_and_the_empty_queue(deps: Deps, client: Any) -> None:
    from service.admin import dashboard as board

    regs = await selling_launch(deps, stores=("S1",), units=1, registrations=3)
    await tickets_for(deps, L, regs)
    watch = QueueWatch(deps)
    for _ in range(3):
        await watch.refresh(L)
        deps.clock.advance(1.0)  # type: ignore[attr-defined]
    d = await board.dashboard(deps, L, await watch.refresh(L), watch.pace(L))
    assert any(w.startswith("Nothing free to sell") for w in d.held_back), d.held_back
    regs2 = await selling_launch(deps, "drop2", stores=("S1",), units=9, registrations=1)
    await tickets_for(deps, "drop2", regs2)
    await watch.refresh("drop2")
    deps.clock.advance(1.0)  # type: ignore[attr-defined]
    d = await board.dashboard(deps, "drop2", await watch.refresh("drop2"), watch.pace("drop2"))
    assert any(w.startswith("The queue is empty") for w in d.held_back), d.held_back
