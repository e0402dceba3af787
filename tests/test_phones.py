"""Phone numbers in E.164, by libphonenumber: de-duplication at sign-up and the agent's
search find one customer whatever form the number was given in, rows stored in the
earlier form (digits as typed) included."""

from __future__ import annotations

import pytest

from service.admin import launches
from service.admin.models import ItemCreate, LaunchCreate, Transition
from service.customers import search
from service.deps import Deps
from service.queue import phones, signup
from service.queue.signup import SignUp

A = {"actor": "test", "channel": "admin"}


@pytest.mark.parametrize(
    ("typed", "region", "e164"),
    [
        ("+44 20 7946 0958", "DE", "+442079460958"),
        ("+44 (0)20 7946-0958", "DE", "+442079460958"),
        ("0044 20 7946 0958", "DE", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("030 1234567", "DE", "+49301234567"),
        ("(030) 123 45 67", "DE", "+49301234567"),
        ("+49 (0)30 1234567", "GB", "+49301234567"),
        ("12", "DE", None),
        ("call me", "DE", None),
    ],
)
def test_numbers_take_one_form(typed: str, region: str, e164: str | None) -> None:
    assert phones.normalize(typed, region) == e164


async def _open(deps: Deps) -> None:
    await launches.create_launch(deps, LaunchCreate(id="l1", name="L"), **A)
    await launches.add_item(deps, "l1", "stores", ItemCreate(id="S1", name="S"), **A)
    await launches.transition(deps, "l1", Transition(action="advance", to="registration_open"), **A)


async def _sign_up(deps: Deps, email: str, phone: str) -> None:
    body = SignUp(email=email, phone=phone)
    await signup.sign_up(deps, "l1", body, channel="web")


async def test_a_number_in_another_form_is_the_same_registration(deps: Deps) -> None:
    await _open(deps)
    await _sign_up(deps, "a@example.com", "+49 30 1234567")
    await _sign_up(deps, "b@example.com", "030 123 45 67")  # national form (region DE)
    await _sign_up(deps, "c@example.com", "0049 30 1234567")
    rows = await deps.pool.fetch("SELECT email, phone_norm FROM registrations")
    assert [(r["email"], r["phone_norm"]) for r in rows] == [("a@example.com", "+49301234567")]


async def test_a_row_stored_in_the_earlier_form_still_matches(deps: Deps) -> None:
    await _open(deps)
    # Before numbers took the E.164 form, a national number was kept as its digits.
    await deps.pool.execute(
        "INSERT INTO registrations (launch_id, public_id, email, email_norm, name, phone,"
        " phone_norm, channel) VALUES ('l1', 'rold000000000', 'old@example.com',"
        " 'old@example.com', 'Old Row', '030 1234567', '0301234567', 'web')"
    )
    await _sign_up(deps, "new@example.com", "+49 30 1234567")
    assert await deps.pool.fetchval("SELECT count(*) FROM registrations") == 1
    for typed in ("+49 30 1234567", "030 1234567", "0049301234567", "1234567"):
        found = await search.search(deps, typed)
        assert [v.registration.email for v in found] == ["old@example.com"], typed


async def test_the_agent_finds_a_customer_by_any_form(deps: Deps) -> None:
    await _open(deps)
    await _sign_up(deps, "ada@example.com", "+44 20 7946 0958")
    for typed in (
        "+442079460958",
        "+44 (0)20 7946 0958",
        "0044 20 7946 0958",
        "020 7946 0958",  # national, in a country other than the default region
        "20 7946 0958",
        "79460958",  # the end of the number, all a caller remembers
    ):
        found = await search.search(deps, typed)
        assert [v.registration.email for v in found] == ["ada@example.com"], typed
