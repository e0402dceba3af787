"""Countdowns and waits as the pages write them: a sale days away is counted in days,
not in a hundred-odd hours."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.deps import Deps
from tests.browser import Browser, browser, no_script_errors
from tests.serve import serving

__all__ = ["browser", "no_script_errors"]  # fixtures used by name

S, MIN, H, DAY = 1000, 60_000, 3_600_000, 86_400_000


@pytest.fixture
def served(deps: Deps) -> Iterator[str]:
    with serving(deps.settings) as base:
        yield base


async def test_countdowns_and_waits_count_days(
    served: str, browser: Browser, no_script_errors: None
) -> None:
    page = await browser.new_page(served, phone=True)

    async def written() -> tuple[list[str], list[str]]:
        await page.goto("/")
        clocks = await page.evaluate(
            "(ms) => ms.map((m) => fd.clock(m))",
            [59 * S, 61 * MIN, 23 * H + 59 * MIN, DAY, DAY + 2 * H + 3 * MIN + 4 * S, 8 * DAY],
        )
        waits = await page.evaluate(
            "(s) => s.map((x) => fd.duration(x))", [40, 600, 3 * 3600, 26 * 3600, 9 * 86400]
        )
        return clocks, waits

    clocks, waits = await browser.run(written())
    assert clocks == [
        "0:59",
        "1:01:00",
        "23:59:00",
        "1 day 0:00:00",
        "1 day 2:03:04",
        "8 days 0:00:00",
    ]
    assert waits == ["40 s", "about 10 min", "about 3 h 0 min", "about 1 day 2 h", "about 9 days"]
