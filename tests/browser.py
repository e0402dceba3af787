"""A real browser for page tests: Playwright driving Debian's Chromium.

One Chromium per test session runs on an event loop of its own, in a thread: the
tests' own loops (one per test, with their Postgres pools) stay independent of it.
A test hands the browser a coroutine with `await browser.run(...)`; every Playwright
call happens on the browser's loop.

Never downloads a browser build: it launches `chromium` from PATH (`.ci/run` installs
Debian's package), and skips the page tests when there is none.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

SCREENSHOTS = Path(__file__).parent / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
ARGS = [
    "--no-sandbox",  # root in CI has no user namespace for the sandbox
    "--disable-gpu",
    "--disable-background-networking",  # the network is closed: no update or sync calls
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


class Browser:
    """Chromium on its own loop in a thread; `run` executes a coroutine there."""

    def __init__(self, executable: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="browser", daemon=True)
        self._thread.start()
        self._playwright: Any = None
        self.chromium: Any = None
        self._start(executable)

    def _start(self, executable: str) -> None:
        from playwright.async_api import async_playwright

        async def start() -> None:
            self._playwright = await async_playwright().start()
            self.chromium = await self._playwright.chromium.launch(
                executable_path=executable, args=ARGS, headless=True
            )

        asyncio.run_coroutine_threadsafe(start(), self.loop).result(timeout=60)

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the browser's loop and wait for it from the caller's loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def new_page(self, base_url: str, *, phone: bool = False) -> Any:
        async def make() -> Any:
            context = await self.chromium.new_context(
                base_url=base_url,
                viewport=PHONE if phone else DESKTOP,
                locale="en-GB",
                timezone_id="Europe/London",
            )
            context.set_default_timeout(15_000)
            page = await context.new_page()
            page.on("pageerror", lambda exc: _errors.append(f"{page.url}: {exc}"))
            return page

        return await self.run(make())

    def close(self) -> None:
        async def stop() -> None:
            await self.chromium.close()
            await self._playwright.stop()

        try:
            asyncio.run_coroutine_threadsafe(stop(), self.loop).result(timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
            self.loop.close()


_errors: list[str] = []
"""Uncaught script errors on any page; `no_script_errors` fails the test on them."""


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        if os.environ.get("FAIRDROP_REQUIRE_BROWSER") == "1":
            pytest.fail("no chromium on PATH (apt-get install chromium)")
        pytest.skip("no chromium on PATH (apt-get install chromium)")
    b = Browser(executable)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def no_script_errors() -> Iterator[None]:
    _errors.clear()
    yield
    assert _errors == [], f"pages threw script errors: {_errors}"


# Every visible form control has a name a screen reader can say, and nothing is wider
# than the screen (no sideways scrolling on a phone).
_CHECK = """() => {
  const unnamed = [...document.querySelectorAll("input, select, textarea, button")]
    .filter((el) => el.type !== "hidden" && el.offsetParent !== null)
    .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label")
      && !(el.tagName === "BUTTON" && el.textContent.trim()))
    .map((el) => el.outerHTML.slice(0, 80));
  const wide = document.documentElement.scrollWidth - window.innerWidth;
  return { unnamed, wide };
}"""


async def shoot(page: Any, name: str) -> None:
    """Save `name` at phone and desktop width (full page) under tests/screenshots/,
    checking at each width that controls are labelled and nothing overflows."""
    SCREENSHOTS.mkdir(exist_ok=True)
    original = page.viewport_size
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(size)
        found = await page.evaluate(_CHECK)
        assert found["unnamed"] == [], f"{name} ({label}): controls without a label"
        assert found["wide"] <= 0, f"{name} ({label}): {found['wide']} px wider than the screen"
        await page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    await page.set_viewport_size(original)
