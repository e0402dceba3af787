"""The pickup code's QR scans: every QR fairdrop makes (the PNG and SVG a shopper
downloads, the e-mail's image, the reservation page's inline code) is a standard QR
code, never a Micro QR (which most phone cameras and store scanners cannot read), and
reads back as exactly the code; the desk accepts exactly what it encodes, which is what
a scanner types into the code field.

Decoded with zxing-cpp, the library behind many scanning apps.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator

import msgspec
import pytest
import zxingcpp
from litestar.testing import AsyncTestClient
from PIL import Image
from playwright.async_api import expect

from service.auth.apikeys import create_key
from service.clock import FakeClock, SystemClock
from service.customers import links
from service.deps import Deps
from service.infra.settings import Settings
from service.notify import send_pending
from service.queue.registrations import issue_token
from service.stock import confirm, holds
from service.stock.codes import format_code
from service.stock.models import Reservation
from service.web.app import create_app
from service.web.auth import SHOPPER_COOKIE
from tests.browser import Browser, browser, no_script_errors, shoot
from tests.mail import Inbox
from tests.serve import selling_launch, serving

__all__ = ["browser", "no_script_errors"]  # fixtures used by name

L = "drop"
Client = AsyncTestClient  # type: ignore[type-arg]


def scan(png: bytes) -> tuple[str, zxingcpp.BarcodeFormat]:
    """What a scanner reads in the image: the one symbol's text and format."""
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(found) == 1, f"one symbol in the image, found {len(found)}"
    return found[0].text, found[0].format


def assert_scans_as(png: bytes, code: str) -> str:
    text, kind = scan(png)
    assert kind == zxingcpp.BarcodeFormat.QRCode, f"a standard QR code, not {kind}"
    assert text == code
    return text


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[Client]:
    application = create_app(msgspec.structs.replace(settings, background=False), clock=clock)
    async with AsyncTestClient(application) as c:
        yield c


async def _bought(deps: Deps) -> tuple[int, Reservation]:
    [reg] = await selling_launch(deps, L, units=1, registrations=1)
    hold = await holds.reserve(deps, L, reg, "S1", "K1")
    return reg, await confirm.confirm(deps, L, reg, hold.hold_id)


async def test_the_served_png_and_the_mailed_image_scan_as_the_code_at_the_desk(
    deps: Deps, app: Client, inbox: Inbox
) -> None:
    reg, reservation = await _bought(deps)
    token = {"token": links.manage_token(deps, L, reg)}
    staff = {"Authorization": f"Bearer {await create_key(deps.pool, 'staff', store_id='S1')}"}

    png = await app.get(
        f"/api/launches/{L}/manage/reservations/{reservation.id}/qr.png", params=token
    )
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    typed = assert_scans_as(png.content, reservation.code)

    assert await send_pending(deps) == 1
    [image] = [p for p in inbox.messages[0].walk() if p.get_content_maintype() == "image"]
    assert_scans_as(image.get_content(), reservation.code)

    # The desk takes what the scanner typed, as it is.
    card = await app.get(f"/api/staff/launches/{L}/reservations/{typed}", headers=staff)
    assert card.status_code == 200, card.text
    assert card.json()["code"] == reservation.code and card.json()["status"] == "confirmed"


async def test_the_page_and_the_svg_scan_and_the_desk_takes_the_scan(
    deps: Deps, browser: Browser, no_script_errors: None
) -> None:
    deps.clock = SystemClock()  # the server runs on real time
    reg, reservation = await _bought(deps)
    await deps.pool.execute("UPDATE registrations SET name = 'Ada Lovelace'")
    key = await create_key(deps.pool, "staff", store_id="S1", label="Desk 1")
    link = links.manage_token(deps, L, reg)
    shopper = await issue_token(deps, L, reg)
    svg_url = f"/api/launches/{L}/manage/reservations/{reservation.id}/qr.svg?token={link}"

    with serving(deps.settings) as base:
        page = await browser.new_page(base, phone=True)

        async def shown() -> tuple[bytes, bytes]:
            cookie = {"name": SHOPPER_COOKIE, "value": shopper.token, "url": base}
            await page.context.add_cookies([cookie])
            await page.goto(f"/launches/{L}/reservation")
            await expect(page.locator(".code")).to_have_text(format_code(reservation.code))
            inline = await page.locator(".qr svg").screenshot()
            await shoot(page, "30-reservation-qr")
            await page.goto(svg_url)
            served = await page.locator("svg").screenshot()
            return inline, served

        inline, served = await browser.run(shown())
        typed = assert_scans_as(inline, reservation.code)
        assert_scans_as(served, reservation.code)

        desk = await browser.new_page(base)

        async def at_the_desk() -> None:
            await desk.goto(f"/desk/{L}")
            await desk.get_by_label("Access key").fill(key)
            await desk.get_by_role("button", name="Sign in").click()
            field = desk.get_by_label(re.compile("^Pickup code"))
            await field.fill(typed)
            await field.press("Enter")  # what a scanner sends after the code
            await expect(desk.locator("#result-name")).to_have_text("Ada Lovelace")
            await expect(desk.locator("#result-status")).to_have_text("confirmed")

        await browser.run(at_the_desk())


def test_a_micro_qr_is_told_apart() -> None:
    """The check above can fail: a Micro QR of the same code reads as MicroQRCode."""
    import segno

    buffer = io.BytesIO()
    segno.make("ABCDEFGHJKM", micro=True).save(buffer, kind="png", scale=8, border=4)
    text, kind = scan(buffer.getvalue())
    assert text == "ABCDEFGHJKM" and kind == zxingcpp.BarcodeFormat.MicroQRCode
