"""The agent's customer card on a phone, with the long names real data has: the tags
wrap onto lines of their own and nothing spills out of the card."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest
from playwright.async_api import expect

from service import demo
from service.clock import SystemClock
from service.deps import Deps
from tests.browser import Browser, browser, no_script_errors, shoot
from tests.serve import serving

__all__ = ["browser", "no_script_errors"]  # fixtures used by name

LONG_EMAIL = "firstname.middlename.lastname.customer@subdomain.example-company.co.uk"

# Every element of each customer card whose box reaches past the card's.
_SPILLS = """() => [...document.querySelectorAll(".customer")].flatMap((card) => {
  const edge = card.getBoundingClientRect();
  return [...card.querySelectorAll("*")]
    .filter((el) => el.offsetParent !== null)
    .filter((el) => { const r = el.getBoundingClientRect();
                      return r.right > edge.right + 0.5 || r.left < edge.left - 0.5; })
    .map((el) => el.outerHTML.slice(0, 80));
})"""

# The tags under the name start at the card's left, each on a line it fits on.
_TAGS = """() => [...document.querySelectorAll(".customer")].map((card) => {
  const name = card.querySelector("h2").getBoundingClientRect();
  return [...card.querySelectorAll(".customer-tags .tag")].map((t) => {
    const r = t.getBoundingClientRect();
    return { below: r.top >= name.bottom - 0.5, left: Math.round(r.left - name.left) };
  });
})"""


@pytest.fixture
def served(deps: Deps) -> Iterator[str]:
    deps.clock = SystemClock()
    with serving(deps.settings) as base:
        deps.settings = msgspec.structs.replace(deps.settings, public_url=base)
        yield base


async def test_the_customer_card_fits_a_phone(
    deps: Deps, served: str, browser: Browser, no_script_errors: None
) -> None:
    info = await demo.seed(deps)
    await deps.pool.execute(
        "UPDATE launches SET name = 'Phone 17 Pro Max launch: London, Manchester and Leeds'"
        " WHERE id = 'demo'"
    )
    await deps.pool.execute(
        "UPDATE registrations SET email = $1, email_norm = $1 WHERE email = 'shopper2@example.com'",
        LONG_EMAIL,
    )
    agent = next(k.signin_path for k in info.keys if k.role == "agent")
    page = await browser.new_page(served, phone=True)

    async def walk() -> tuple[list[str], list[list[dict[str, object]]]]:
        await page.goto(agent)
        await page.get_by_role("button", name="Sign in as customer service").click()
        await page.get_by_label("E-mail, phone, name, pickup code or registration number").fill(
            LONG_EMAIL
        )
        await page.get_by_role("button", name="Search").click()
        await expect(page.locator(".customer")).to_have_count(2)
        await shoot(page, "82-agent-long-names")
        return await page.evaluate(_SPILLS), await page.evaluate(_TAGS)

    spills, tags = await browser.run(walk())
    assert spills == [], spills
    assert tags and all(len(card) == 2 for card in tags), tags
    for card in tags:
        assert all(t["below"] for t in card), card
        assert card[0]["left"] == 0, "the tags start under the name"
