"""E-mails with no mail server to go to can be read: `outbox.read`, `fairdrop outbox`
and the operators' `/outbox` page show each as it would be sent, newest first, with its
links, whether it is waiting, was sent or was dropped."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import msgspec
from litestar.testing import AsyncTestClient

from service.auth.apikeys import create_key
from service.deps import Deps
from service.notify import enqueue_notification, outbox, send_pending
from service.queue import signup
from service.stock.confirm import confirm
from service.stock.holds import reserve
from tests.mail import smtp_server
from tests.serve import advance, free_port, server_env, stocked_launch

L = "drop"


async def _mails(deps: Deps) -> list[int]:
    """Three mails for launch `L`: Ada's verification (waiting), Ada's reservation (sent),
    one for a registration that is gone (dropped); and one of another launch."""
    deps.settings = msgspec.structs.replace(
        deps.settings, smtp_port=free_port(), public_url="http://shop.test"  # no SMTP there
    )
    regs = await stocked_launch(deps, L, units=2, registrations=1)
    (theirs,) = await stocked_launch(deps, "other", units=1, registrations=1)
    await advance(deps, L, "registration_open")
    await signup.sign_up(
        deps,
        L,
        signup.SignUp(email="Ada+drop@Example.com", name="Ada <b>Lovelace</b>"),
        channel="web",
    )
    async with deps.pool.acquire() as con:
        await enqueue_notification(con, L, "registration_confirmed", {"registration": 999})
        await enqueue_notification(con, "other", "registration_confirmed", {"registration": theirs})
    # No server: each call backs the first due mail off; the one for nobody is dropped.
    for _ in range(3):
        assert await send_pending(deps) == 0
    await advance(deps, L, "registration_closed", "checkin_open", "selling")
    hold = await reserve(deps, L, regs[0], "S1", "K1")
    with smtp_server(deps) as inbox:
        await confirm(deps, L, regs[0], hold.hold_id)
        # Only the reservation is due now: the verification mail is backing off.
        assert await send_pending(deps) == 1 and len(inbox.messages) == 1
    return regs


async def test_read_shows_each_mail_newest_first_with_its_links(deps: Deps) -> None:
    await _mails(deps)
    mails = await outbox.read(deps, launch_id=L)
    assert [m.kind for m in mails] == [
        "reservation_confirmed",
        "registration_confirmed",
        "verify_email",
    ]
    sent, dropped, waiting = mails
    assert sent.state == "sent" and sent.note.startswith("sent ")
    assert "Your reservation" in sent.subject and sent.to == "shopper0@example.com"
    assert any("/manage?token=" in link for link in sent.links)
    assert dropped.state == "dropped" and "registration is gone" in dropped.note
    assert waiting.state == "waiting" and "not sent yet" in waiting.note
    assert waiting.to == '"Ada <b>Lovelace</b>" <Ada+drop@Example.com>'
    assert waiting.subject == "Confirm your e-mail address for Drop"
    link, home = waiting.links
    assert home.endswith(f"/launches/{L}")
    assert link.startswith(f"http://shop.test/api/launches/{L}/verify?token=")
    token = link.split("token=")[1]
    assert (await signup.verify(deps, L, token, channel="web")).status == "verified"

    # The address as typed or as normalised (case, +tag) finds the same mails.
    for to in ("ada@example.com", "ADA+other@example.com"):
        assert [m.kind for m in await outbox.read(deps, to=to)] == ["verify_email"]
    everything = await outbox.read(deps)
    assert len(everything) == 4 and everything[0].launch_id == L
    assert len(await outbox.read(deps, limit=2)) == 2


def test_pieces_cut_links_out_of_text() -> None:
    text = "Open http://a.test/x?token=1. Or (http://b.test/y)"
    assert outbox.pieces(text) == [
        ("Open ", False),
        ("http://a.test/x?token=1", True),
        (". Or (", False),
        ("http://b.test/y", True),
        (")", False),
    ]
    assert "".join(p for p, _ in outbox.pieces(text)) == text


async def test_fairdrop_outbox_prints_the_mails(deps: Deps) -> None:
    await _mails(deps)
    env = server_env(deps.settings)

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "service", "outbox", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    printed = await asyncio.to_thread(run, "--launch", L, "--to", "ada@example.com")
    assert "verify_email" in printed and "not sent yet" in printed
    assert "Subject: Confirm your e-mail address for Drop" in printed
    assert f"    http://shop.test/api/launches/{L}/verify?token=" in printed
    assert "reservation_confirmed" not in printed
    everything = await asyncio.to_thread(run)
    kinds = [line.split(" · ")[1] for line in everything.splitlines() if line.startswith("── #")]
    assert kinds == [
        "reservation_confirmed",
        "registration_confirmed",
        "registration_confirmed",
        "verify_email",
    ]
    assert "No e-mails in the outbox that match." in await asyncio.to_thread(
        run, "--to", "nobody@example.com"
    )
    refused = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "service", "outbox", "--limit", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "1 or more" in refused.stderr


async def test_the_outbox_page_is_for_operators(deps: Deps, client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    await _mails(deps)
    away = await client.get("/outbox", follow_redirects=False)
    assert away.status_code == 303 and away.headers["location"].startswith("/staff/login")

    staff = await create_key(deps.pool, "staff", store_id="S1")
    assert (await client.get("/outbox", headers={"x-api-key": staff})).status_code == 403

    operator = await create_key(deps.pool, "operator")
    await client.post("/staff/login", data={"key": operator})
    shown = await client.get("/outbox", params={"launch": L})
    assert shown.status_code == 200 and "script-src 'self'" in shown.headers[
        "content-security-policy"
    ]
    text = shown.text
    assert text.index("Your reservation") < text.index("Confirm your e-mail address for Drop")
    assert '<a href="http://shop.test/api/launches/drop/verify?token=' in text
    assert "&lt;b&gt;Lovelace&lt;/b&gt;" in text and "<b>Lovelace" not in text
    assert 'href="/outbox"' in text, "operators find it in the navigation"

    mine = await client.get("/outbox", params={"to": "Ada@example.com"})
    assert "Confirm your e-mail" in mine.text and "Your reservation" not in mine.text
    none = await client.get("/outbox", params={"to": "nobody@example.com"})
    assert "No e-mails that match" in none.text
