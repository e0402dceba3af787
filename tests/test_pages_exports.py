"""The operations page links the launch's CSV exports, and a signed-in operator's
browser downloads them (the session cookie is the key)."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path
from typing import Any

from playwright.async_api import expect

from service.auth.apikeys import create_key
from service.clock import SystemClock
from service.deps import Deps
from tests.browser import Browser, browser, no_script_errors, shoot
from tests.serve import selling_launch, serving

__all__ = ["browser", "no_script_errors"]  # fixtures used by name

L = "drop"


async def _downloads(page: Any, path: str, key: str) -> dict[str, tuple[str, str]]:
    await page.goto(path)
    await page.get_by_label("Access key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"**{path}")
    await expect(page.get_by_role("heading", name="Exports")).to_be_visible()
    out = {}
    for name in ("Registrations", "Reservations", "Audit trail"):
        async with page.expect_download() as info:
            await page.get_by_role("link", name=name).click()
        download = await info.value
        text = await asyncio.to_thread(Path(await download.path()).read_text)
        out[name] = (download.suggested_filename, text)
    await shoot(page, "41-operations-exports")
    return out


async def test_the_operations_page_downloads_the_exports(
    deps: Deps, browser: Browser, no_script_errors: None
) -> None:
    deps.clock = SystemClock()  # the server runs on real time
    await selling_launch(deps, L, registrations=3)
    key = await create_key(deps.pool, "operator", label="Ops")
    with serving(deps.settings) as base:
        page = await browser.new_page(base)
        got = await browser.run(_downloads(page, f"/ops/{L}", key))
    name, text = got["Registrations"]
    assert name == f"registrations-{L}.csv"
    assert len(list(csv.DictReader(io.StringIO(text)))) == 3
    assert got["Reservations"][0] == f"reservations-{L}.csv"
    assert got["Reservations"][1].startswith("id,code,")
    assert got["Audit trail"][0] == f"audit-{L}.csv"
    assert "launch." in got["Audit trail"][1]
