"""Marketing sets a launch up in the console, in a real browser against the real app:
creates it (a time out of order is caught as typed and by the server), adds two stores
and two SKUs, allocates in the grid, imports a list with one bad line and reads the
per-line report, opens registration (asked once more), and the public page shows it."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import expect

from service.admin import launches
from service.auth.apikeys import create_key
from service.clock import SystemClock
from service.deps import Deps
from service.stock.counts import postgres_counts
from tests.browser import Browser, browser, no_script_errors, shoot
from tests.serve import serving
from tests.test_pages_console import _sign_in

__all__ = ["browser", "no_script_errors"]  # fixtures used by name

LIST = (
    "email,name\nada@example.com,Ada Lovelace\ngrace@example.com,Grace Hopper\n"
    "not-an-email,Nobody\nADA@example.com,Ada again\n"
)


async def _new_launch(page: Any) -> None:
    await page.get_by_role("link", name="New launch").click()
    await expect(page.get_by_role("heading", name="New launch")).to_be_visible()
    await page.get_by_label("Name", exact=True).fill("Fairphone 6")
    await page.get_by_label(re.compile("^Description")).fill("The phone you can repair.")
    await page.get_by_label(re.compile("^Time zone")).fill("Europe/Berlin")
    await page.get_by_label("Registration opens").fill("2027-03-01T10:00")
    await page.get_by_label("Registration closes").fill("2027-02-01T10:00")  # before it opens
    said = page.locator("#e-registration_closes_at")
    await expect(said).to_have_text("Registration closes must be after registration opens.")
    opens = page.locator("#e-registration_opens_at")
    await expect(opens).to_have_text("Registration opens is set after registration closes.")
    await page.get_by_role("button", name="Create the launch").click()  # the server says so too
    await expect(page.locator("#form-problems")).to_contain_text("was not created")
    await expect(said).to_have_text("Registration closes must be after registration opens.")
    await expect(page.get_by_label(re.compile("^Description"))).to_have_value(
        "The phone you can repair."
    )
    await shoot(page, "61-console-new-launch-error")
    await expect(opens).to_have_text("Registration opens is set after registration closes.")
    await page.get_by_label("Registration closes").fill("2027-03-08T10:00")
    await expect(said).to_be_hidden()
    await expect(opens).to_be_hidden()
    await page.get_by_role("button", name="Create the launch").click()
    await expect(page.locator("#notice")).to_contain_text("Launch “Fairphone 6” created")


async def _stock(page: Any) -> None:
    for table, what, items in (
        ("stores", "store", (("B1", "Berlin Mitte"), ("H1", "Hamburg Altona"))),
        ("skus", "SKU", (("K128", "128 GB"), ("K256", "256 GB"))),
    ):
        for item_id, name in items:
            await page.locator(f"#{table}-name").fill(name)
            await page.locator(f"#{table}-id").fill(item_id)
            await page.get_by_role("button", name=f"Add {what}").click()
            await expect(page.locator("#notice")).to_contain_text(f"“{name}” added")
    await page.get_by_label("Berlin Mitte, 128 GB: units").fill("10")
    await page.get_by_label("Berlin Mitte, 256 GB: units").fill("5")
    await page.get_by_label("Hamburg Altona, 128 GB: units").fill("8")
    await page.get_by_role("button", name="Save allocations").click()
    await expect(page.locator("#notice")).to_have_text("3 allocation(s) changed.")
    await expect(page.get_by_label("Hamburg Altona, 128 GB: units")).to_have_value("8")


async def _import_and_open(page: Any) -> None:
    await page.get_by_label("Or paste the list").fill(LIST)
    await page.get_by_role("button", name="Import").click()
    report = page.locator("#import-report")
    await expect(report).to_contain_text("2 accepted")
    await expect(report).to_contain_text("1 duplicate")
    await expect(report).to_contain_text("1 invalid")
    rows = report.locator("tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0)).to_contain_text("4invalid'not-an-email' is not an e-mail address")
    await expect(rows.nth(1)).to_contain_text("5duplicate")  # the CSV's lines
    await shoot(page, "62-console-import-report")
    await page.get_by_role("button", name="Open registration now…").click()
    await expect(
        page.get_by_role("heading", name=re.compile("Registration open”\\?"))
    ).to_be_visible()
    await shoot(page, "65-console-confirm-step")
    await page.get_by_role("button", name=re.compile("^Yes, move to")).click()
    await expect(page.locator("#notice")).to_have_text("The launch is now: Registration open.")
    await page.get_by_label("Kind").select_option("registration.imported")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("table.audit tbody tr")).to_have_count(2)  # one a person
    await shoot(page, "63-console-launch-audit")


async def test_marketing_sets_up_a_launch_in_the_console(
    deps: Deps, browser: Browser, no_script_errors: None
) -> None:
    deps.clock = SystemClock()  # the server runs on real time
    key = await create_key(deps.pool, "operator", label="Marketing")
    shop = {"FAIRDROP_PUBLIC_URL": "https://shop.example"}  # links never follow `Host`
    with serving(deps.settings, env=shop) as base:
        page = await browser.new_page(base)

        async def run() -> None:
            await _sign_in(page, "/console", key)
            await shoot(page, "60-console-empty")
            await _new_launch(page)
            await _stock(page)
            await _import_and_open(page)
            await page.goto("/console")
            row = page.locator("table.launch-list tbody tr")
            await expect(row).to_contain_text("Registration open")
            await expect(row.locator("td").nth(4)).to_have_text("2")
            await shoot(page, "64-console-list")
            await page.get_by_role("link", name="Fairphone 6").click()
            campaign = page.get_by_label("Link for the campaign")
            await expect(campaign).to_have_value("https://shop.example/launches/fairphone-6")
            await page.goto("/launches/fairphone-6")
            await expect(page.get_by_role("heading", name="Fairphone 6")).to_be_visible()
            await expect(page.locator(".description")).to_have_text("The phone you can repair.")
            await expect(page.get_by_role("heading", name="Register")).to_be_visible()

        await browser.run(run())
    launch = await launches.get_launch(deps, "fairphone-6")
    assert launch.state == "registration_open" and launch.time_zone == "Europe/Berlin"
    counts = await postgres_counts(deps, "fairphone-6")
    assert counts == {"B1:K128": (10, 0), "B1:K256": (5, 0), "H1:K128": (8, 0)}
