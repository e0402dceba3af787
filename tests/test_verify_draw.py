"""The draw's published record says who took part, and `fairdrop verify-draw` checks all
of it: the entrants are on the committed roster, the order is exactly those entrants as
the seed sorts them, their number is the one the draw page and the API state, and the
seed matches the seed hash the checker saved at the commitment (`--seed-hash`), so the
file is not the only witness of itself. Every tampering fails; the genuine draw passes.
The draw page states the roster and the entrants apart, and its hashes wrap on a phone."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from playwright.async_api import expect

from service.admin import launches
from service.admin.models import Transition
from service.clock import SystemClock
from service.deps import Deps
from service.queue import checkin, draw
from service.queue.draw import PublishedDraw
from tests.browser import Browser, browser, no_script_errors, shoot
from tests.serve import ACTOR, serving, stocked_launch

__all__ = ["browser", "no_script_errors"]  # fixtures used by name

L = "drop"
Client = AsyncTestClient  # type: ignore[type-arg]


async def _advance(deps: Deps, *states: str) -> None:
    for state in states:
        await launches.transition(deps, L, Transition(action="advance", to=state), **ACTOR)  # type: ignore[arg-type]


async def _drawn(deps: Deps, roster: int, checked_in: int) -> tuple[str, PublishedDraw]:
    """A shuffled launch: `roster` verified registrations, the first `checked_in` of them
    in the pre-queue, drawn. Returns the seed hash as saved at the commitment, and the
    published record."""
    regs = await stocked_launch(deps, L, registrations=roster)
    await _advance(deps, "registration_open", "registration_closed")
    saved = (await draw.commitment(deps, L)).seed_hash
    await _advance(deps, "checkin_open")
    for reg in regs[:checked_in]:
        await checkin.check_in(deps, L, reg)
    await _advance(deps, "selling")
    return saved, await draw.published(deps, L)


def _tampered(good: PublishedDraw) -> dict[str, PublishedDraw]:
    seed = bytes.fromhex(good.seed)
    outside_order = [r for r in good.roster if r not in good.order]
    other_seed = bytes(32)
    return {
        # One more roster id, put where the seed sorts it (the order alone looks right).
        "added id": msgspec.structs.replace(
            good, order=draw.order(seed, [*good.order, outside_order[0]])
        ),
        "removed id": msgspec.structs.replace(good, order=good.order[1:]),
        "swapped order": msgspec.structs.replace(
            good, order=[good.order[1], good.order[0], *good.order[2:]]
        ),
        "wrong seed": msgspec.structs.replace(good, seed=other_seed.hex()),
        "count mismatch": msgspec.structs.replace(good, entrants=good.entrants + 1),
        "id off the roster": msgspec.structs.replace(
            good, order=draw.order(seed, [*good.order[1:], "not-on-the-roster"])
        ),
        # Re-seeded and re-ordered, hash and all: consistent in itself, and only the
        # seed hash saved at the commitment tells.
        "seed-hash mismatch": msgspec.structs.replace(
            good,
            seed=other_seed.hex(),
            seed_hash=hashlib.sha256(other_seed).hexdigest(),
            order=draw.order(other_seed, good.order),
        ),
    }


async def test_every_tampering_fails_and_the_genuine_draw_passes(deps: Deps) -> None:
    saved, good = await _drawn(deps, roster=12, checked_in=7)
    assert good.entrants == len(good.order) == 7 and len(good.roster) == 12
    assert draw.check(good, seed_hash=saved) == []
    assert draw.check(good, seed_hash=saved.upper()) == [], "hex in any case"

    for name, bad in _tampered(good).items():
        assert draw.check(bad, seed_hash=saved), f"{name} must fail"
    reseeded = _tampered(good)["seed-hash mismatch"]
    assert draw.check(reseeded) == [], "without the saved hash the file vouches for itself"


def _verify(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", "verify-draw", str(path), *extra],
        capture_output=True,
        text=True,
        check=False,
    )


async def test_verify_draw_on_the_command_line(deps: Deps, tmp_path: Path) -> None:
    saved, good = await _drawn(deps, roster=12, checked_in=7)
    path = tmp_path / "draw.json"
    path.write_bytes(msgspec.json.encode(good))

    ok = _verify(path, "--seed-hash", saved, "--id", good.order[2])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("OK:") and "as you saved it" in ok.stdout
    assert f"{good.order[2]} is number 3 of 7" in ok.stdout

    says = {
        "added id": "took part",
        "removed id": "took part",
        "swapped order": "not in the order",
        "wrong seed": "does not match",
        "count mismatch": "took part",
        "id off the roster": "not on the roster",
        "seed-hash mismatch": "seed hash you saved",
    }
    for name, bad in _tampered(good).items():
        path.write_bytes(msgspec.json.encode(bad))
        run = _verify(path, "--seed-hash", saved)
        assert run.returncode == 1, f"{name}: {run.stdout}"
        assert "OK" not in run.stdout and says[name] in run.stdout, f"{name}: {run.stdout}"

    path.write_bytes(msgspec.json.encode(good))
    malformed = _verify(path, "--seed-hash", "abc")
    assert malformed.returncode == 2 and "64 hex digits" in malformed.stderr


@pytest.mark.parametrize("checked_in", [0, 3])
async def test_the_page_and_the_api_state_the_count_the_order_holds(
    deps: Deps, client: Client, checked_in: int
) -> None:
    """The demo's draw page said 8 entrants (its roster) while its order held 0."""
    _, published = await _drawn(deps, roster=8, checked_in=checked_in)
    api = (await client.get(f"/api/launches/{L}/draw")).json()
    page = (await client.get(f"/launches/{L}/draw")).text

    def fact(name: str) -> str:
        found = re.search(rf'id="{name}">([^<]*)<', page)
        assert found, name
        return found.group(1)

    assert api["entrants"] == len(published.order) == published.entrants == checked_in
    assert fact("entrants") == str(checked_in)
    assert fact("roster-size") == str(api["roster_size"]) == "8"


async def test_the_draw_page_on_a_phone(
    deps: Deps, browser: Browser, no_script_errors: None
) -> None:
    deps.clock = SystemClock()  # the server runs on real time
    await _drawn(deps, roster=8, checked_in=5)

    with serving(deps.settings) as base:
        page = await browser.new_page(base, phone=True)

        async def look() -> None:
            await page.goto(f"/launches/{L}/draw")
            await expect(page.locator("#entrants")).to_have_text("5")
            # The 64-digit hashes wrap inside the phone's width (`shoot` checks that
            # nothing is wider than the screen).
            box: Any = await page.locator("#seed-hash").bounding_box()
            assert box["x"] + box["width"] <= 390
            await shoot(page, "31-draw")

        await browser.run(look())
