"""Every worker sees a launch's phase change within about a second, and so does the
waiting-room page: two servers share the test's Postgres and Redis, a transition is
made on one, and the other answers the new phase soon after (seen: polls answered by
another worker said `prequeue` for 5 s after the draw, and the page took 13.7 s to
notice the room had opened)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
from playwright.async_api import expect

from service.auth.apikeys import create_key
from service.clock import SystemClock
from service.deps import Deps
from service.queue.registrations import issue_token
from service.web.auth import SHOPPER_COOKIE
from tests.browser import Browser, browser, no_script_errors, shoot
from tests.serve import advance, serving, stocked_launch

__all__ = ["browser", "no_script_errors"]  # fixtures used by name

L = "drop"
BOUND = 3.0
"""Seconds: a generous bound on "about a second" for a machine under load."""


async def within(seconds: float, done: Callable[[], Awaitable[bool]]) -> float:
    """Ask `done` until it holds; how long that took. Fails past `seconds`."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not await done():
        if loop.time() - start > seconds:
            raise AssertionError(f"not seen within {seconds} s")
        await asyncio.sleep(0.5)  # one poll a ticket may make every half second
    return loop.time() - start


async def test_another_worker_answers_the_new_phase_within_a_second(deps: Deps) -> None:
    deps.clock = SystemClock()  # the servers run on real time
    regs = await stocked_launch(deps, L, registrations=2)
    await advance(deps, L, "registration_open", "registration_closed")
    admin = {"Authorization": f"Bearer {await create_key(deps.pool, 'admin')}"}
    shopper = {"Authorization": f"Bearer {(await issue_token(deps, L, regs[0])).token}"}
    api = f"/api/launches/{L}"

    # B starts last: what it knew of the launches' states, it learnt just now.
    with serving(deps.settings) as a, serving(deps.settings) as b:
        async with (
            httpx.AsyncClient(base_url=a, timeout=10) as on_a,
            httpx.AsyncClient(base_url=b, timeout=10) as on_b,
        ):

            async def move(body: dict[str, str]) -> None:
                r = await on_a.post(f"/api/admin/launches/{L}/transitions", json=body, headers=admin)
                assert r.status_code == 200, r.text

            async def state_on_b() -> str:
                r = await on_b.get(f"{api}/queue/status", headers=ticket)
                assert r.status_code == 200, r.text
                return str(r.json()["status"]["state"])

            await move({"action": "advance", "to": "checkin_open"})
            checked_in = await on_a.post(f"{api}/queue/checkin", headers=shopper)
            assert checked_in.status_code == 200, checked_in.text
            ticket = {"Authorization": f"Bearer {checked_in.json()['ticket']}"}
            assert await state_on_b() == "prequeue"

            await move({"action": "advance", "to": "selling"})  # the draw, made on A

            async def drawn() -> bool:
                return await state_on_b() != "prequeue"

            await within(BOUND, drawn)

            await move({"action": "close"})

            async def closed() -> bool:
                return await state_on_b() == "closed"

            await within(BOUND, closed)


async def test_the_waiting_room_page_notices_the_room_open_and_the_draw(
    deps: Deps, browser: Browser, no_script_errors: None
) -> None:
    deps.clock = SystemClock()
    regs = await stocked_launch(deps, L, registrations=2)
    await deps.pool.execute("UPDATE launches SET name = 'Fairphone 6'")
    await advance(deps, L, "registration_open", "registration_closed")
    token = (await issue_token(deps, L, regs[0])).token

    with serving(deps.settings) as base:
        page = await browser.new_page(base, phone=True)

        async def waiting_for_the_room() -> None:
            await page.context.add_cookies([{"name": SHOPPER_COOKIE, "value": token, "url": base}])
            await page.goto(f"/launches/{L}/queue")
            await expect(page.locator("#view-notopen")).to_be_visible()
            await shoot(page, "32-room-not-open")

        await browser.run(waiting_for_the_room())
        await advance(deps, L, "checkin_open")  # by hand: no opening time was announced

        async def let_in() -> None:
            await expect(page.locator("#view-prequeue")).to_be_visible(timeout=BOUND * 1000)
            await shoot(page, "33-prequeue")

        await browser.run(let_in())
        await advance(deps, L, "selling")

        async def drawn() -> None:
            turn_or_wait = page.locator("#view-turn:not([hidden]), #view-waiting:not([hidden])")
            await expect(turn_or_wait).to_be_visible(timeout=BOUND * 1000)

        await browser.run(drawn())
