"""The waiting room turned away (503 from the proxy in a spike, 429 from a rate limit)
comes back when the answer's `Retry-After` says, not after a fixed 5 s, and a poll no
sooner than the `next_poll_seconds` it was last given.

The page runs on Playwright's clock: each wait it schedules is read off, then run out,
so nothing here waits for real seconds. The answers turned away are made by the test
(a route); the others are the real app's.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from service.clock import SystemClock
from service.deps import Deps
from service.queue.registrations import issue_token
from tests.browser import Browser, browser, no_script_errors
from tests.serve import selling_launch, serving

__all__ = ["browser", "no_script_errors"]  # fixtures used by name

L = "drop"
# Every wait the page schedules, with the name of what it will call.
RECORD = """
window.__waits = [];
const schedule = window.setTimeout;
window.setTimeout = (fn, ms, ...rest) => {
  window.__waits.push([fn && fn.name, ms]);
  return schedule(fn, ms, ...rest);
};
"""
UNAVAILABLE = {
    "type": "https://fairdrop.dev/problems/unavailable",
    "title": "The service is briefly unavailable; try again in a few seconds",
    "status": 503,
}


async def _turned_away(route: Any, status: int, retry_after: str) -> None:
    await route.fulfill(
        status=status,
        headers={"Retry-After": retry_after},
        content_type="application/problem+json",
        body=json.dumps({**UNAVAILABLE, "status": status}),
    )


async def _scheduled(page: Any, name: str, count: int) -> list[int]:
    """The waits before `name` once the page has scheduled `count` of them."""
    for _ in range(200):
        waits = [ms for fn, ms in await page.evaluate("window.__waits") if fn == name]
        if len(waits) >= count:
            return [int(ms) for ms in waits]
        await asyncio.sleep(0.05)  # a retry interval: the page is still asking
    raise AssertionError(f"{name} was not scheduled {count} times")


async def test_turned_away_the_waiting_room_waits_as_long_as_it_is_asked(
    deps: Deps, browser: Browser, no_script_errors: None
) -> None:
    deps.clock = SystemClock()  # the server runs on real time
    regs = await selling_launch(deps, L, units=5, registrations=2)
    with serving(deps.settings) as base:
        page = await browser.new_page(base, phone=True)
        token = (await issue_token(deps, L, regs[0])).token
        asked: list[float] = []

        async def journey() -> list[int]:
            await page.context.add_cookies([{"name": "fd_shopper", "value": token, "url": base}])
            await page.clock.install()
            await page.add_init_script(RECORD)
            checkins, polls = 0, 0

            async def checkin(route: Any) -> None:
                nonlocal checkins
                checkins += 1
                if checkins == 1:  # the spike's first check-in turned away at the door
                    return await _turned_away(route, 503, "1")
                await route.continue_()

            async def status(route: Any) -> None:
                nonlocal polls
                polls += 1
                if polls == 2:
                    return await _turned_away(route, 503, "12")
                if polls == 3:
                    return await _turned_away(route, 429, "1")
                answer = await route.fetch()
                asked.append(float((await answer.json())["status"]["next_poll_seconds"]))
                await route.fulfill(response=answer)

            await page.route("**/queue/checkin", checkin)
            await page.route("**/queue/events", lambda route: route.abort())  # poll instead
            await page.route("**/queue/status", status)
            await page.goto(f"/launches/{L}/queue")
            assert await _scheduled(page, "checkIn", 1) == [1000]  # not 5 s
            await page.clock.run_for(1000)
            for count in (1, 2):
                waits = await _scheduled(page, "poll", count)
                await page.clock.run_for(waits[-1])
            waits = await _scheduled(page, "poll", 3)
            # Done with the page before the server stops (no poll may outlive it).
            await page.unroute_all(behavior="ignoreErrors")
            await page.context.close()
            return waits

        waits = await browser.run(journey())
        (every,) = asked
        # Answered: at the pace asked. 503 Retry-After 12: 12 s, not 5 s. 429
        # Retry-After 1: no sooner than the page would have polled anyway.
        assert waits == [every * 1000, max(every, 12) * 1000, max(every, 1) * 1000]
