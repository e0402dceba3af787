"""Public pre-registration: de-duplicated without enumeration, verified by a signed link."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlparse

import msgspec
import pytest

from service import errors
from service.admin import launches
from service.admin.models import ItemCreate, LaunchCreate, LaunchUpdate, Transition
from service.clock import FakeClock
from service.deps import Deps
from service.queue import registrations, signup
from service.queue.signup import SignUp

A = {"actor": "test", "channel": "admin"}
BASE = "http://shop.example"


@pytest.fixture(autouse=True)
def _public_url(deps: Deps) -> None:
    deps.settings = msgspec.structs.replace(deps.settings, public_url=BASE)


async def _open(deps: Deps, **kw: object) -> None:
    await launches.create_launch(deps, LaunchCreate(id="l1", name="L", **kw), **A)  # type: ignore[arg-type]
    await launches.add_item(deps, "l1", "stores", ItemCreate(id="S1", name="S"), **A)
    await launches.transition(deps, "l1", Transition(action="advance", to="registration_open"), **A)


async def _links(deps: Deps) -> list[str]:
    rows = await deps.pool.fetch(
        "SELECT payload FROM outbox WHERE topic = 'notify.verify_email' ORDER BY id"
    )
    return [r["payload"]["link"] for r in rows]


def _token(link: str) -> str:
    return parse_qs(urlparse(link).query)["token"][0]


async def test_sign_up_verify_and_no_enumeration(deps: Deps, clock: FakeClock) -> None:
    with pytest.raises(errors.NotFound):
        await signup.sign_up(deps, "l1", SignUp(email="a@example.com"), channel="web")
    await launches.create_launch(deps, LaunchCreate(id="l1", name="L"), **A)
    with pytest.raises(errors.RegistrationClosed):
        await signup.sign_up(deps, "l1", SignUp(email="a@example.com"), channel="web")
    await launches.transition(deps, "l1", Transition(action="advance", to="registration_open"), **A)

    first = await signup.sign_up(
        deps, "l1", SignUp(email="Ada.L+x@Gmail.com", phone="+44 20 7946 0958"), channel="web"
    )
    again = await signup.sign_up(deps, "l1", SignUp(email="adal@gmail.com"), channel="app")
    by_phone = await signup.sign_up(
        deps, "l1", SignUp(email="other@example.com", phone="+44 (0)20 7946-0958"), channel="web"
    )
    assert first == again == by_phone, "a duplicate answers exactly like a new registration"
    regs = await registrations.list_registrations(deps, "l1")
    assert [(r.email, r.verified_at) for r in regs] == [("Ada.L+x@Gmail.com", None)]
    links = await _links(deps)
    assert len(links) == 1, "one link per ten minutes, however often the form is sent"
    assert links[0].startswith(f"{BASE}/api/launches/l1/verify?token=")
    clock.advance(signup.RESEND_MS / 1000)
    await signup.sign_up(deps, "l1", SignUp(email="adal@gmail.com"), channel="web")
    links = await _links(deps)
    assert len(links) == 2

    done = await signup.verify(deps, "l1", _token(links[0]), channel="web")
    assert done.public_id == regs[0].public_id
    assert (await signup.verify(deps, "l1", _token(links[1]), channel="web")) == done
    verified = await registrations.get_registration(deps, "l1", regs[0].id)
    assert verified.verified_at is not None
    clock.advance(signup.RESEND_MS / 1000)
    await signup.sign_up(deps, "l1", SignUp(email="ada.l@gmail.com"), channel="web")
    assert len(await _links(deps)) == 2, "a verified address gets no new link"
    kinds = [
        r["kind"]
        for r in await deps.pool.fetch("SELECT kind FROM events WHERE kind LIKE 'registration.%'")
    ]
    assert kinds == ["registration.created", "registration.verified"]


async def test_bad_links_and_input_are_refused(deps: Deps, clock: FakeClock) -> None:
    await _open(deps)
    await signup.sign_up(deps, "l1", SignUp(email="a@example.com"), channel="web")
    token = _token((await _links(deps))[0])
    with pytest.raises(errors.Unauthorized, match="another launch"):
        await signup.verify(deps, "l2", token, channel="web")
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    with pytest.raises(errors.Unauthorized):
        await signup.verify(deps, "l1", forged, channel="web")
    clock.advance(signup.VERIFY_TTL_MS / 1000 + 1)
    with pytest.raises(errors.Unauthorized, match="expired"):
        await signup.verify(deps, "l1", token, channel="web")
    with pytest.raises(errors.InvalidField) as bad:
        await signup.sign_up(deps, "l1", SignUp(email="not-an-address"), channel="web")
    assert bad.value.extra["fields"] == ["email"]
    with pytest.raises(errors.InvalidField):
        await signup.sign_up(
            deps, "l1", SignUp(email="b@example.com", preferred_store="NOPE"), channel="web"
        )
    with pytest.raises(errors.InvalidField):
        await signup.sign_up(deps, "l1", SignUp(email="b@example.com", phone="12"), channel="web")


async def test_a_verification_token_is_not_a_shopper_token(deps: Deps) -> None:
    await _open(deps)
    await signup.sign_up(deps, "l1", SignUp(email="a@example.com"), channel="web")
    token = _token((await _links(deps))[0])
    with pytest.raises(errors.Unauthorized, match="not the one for this step"):
        deps.signer.verify(token, launch_id="l1", now_ms=deps.clock.now_ms())


async def test_the_cap_holds_under_a_race(deps: Deps) -> None:
    await _open(deps, registration_cap=5)
    results = await asyncio.gather(
        *(
            signup.sign_up(deps, "l1", SignUp(email=f"p{i}@example.com"), channel="web")
            for i in range(40)
        ),
        return_exceptions=True,
    )
    full = [r for r in results if isinstance(r, errors.RegistrationFull)]
    assert len(full) == 35 and all(
        not isinstance(r, Exception) or isinstance(r, errors.RegistrationFull) for r in results
    )
    assert await deps.pool.fetchval("SELECT count(*) FROM registrations") == 5
    await launches.update_launch(deps, "l1", LaunchUpdate(registration_cap=6), **A)
    await signup.sign_up(deps, "l1", SignUp(email="late@example.com"), channel="web")
    assert await deps.pool.fetchval("SELECT count(*) FROM registrations") == 6
