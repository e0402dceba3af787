"""Staff are told the truth, in a real browser: the pickup desk on a phone shows every
reservation's status, and Collect is off outside the pickup window, which is shown in
local time with its zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.async_api import expect

from service.auth.apikeys import create_key
from service.clock import SystemClock
from service.deps import Deps
from service.stock import confirm, holds
from service.stock.codes import format_code
from tests.browser import Browser, browser, no_script_errors, shoot
from tests.serve import selling_launch, serving
from tests.test_pages_console import _dress, _sign_in

__all__ = ["browser", "no_script_errors"]  # fixtures used by name

L = "drop"
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
