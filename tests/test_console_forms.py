"""The launch console's forms over HTTP against the real app: the new-launch form checks
with the admin API's own rules and says what is wrong per field (never a 500), keeps
what was typed; an allocation below what is held is refused in words; only operators
and admins get in; another site's page cannot post."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.admin import launches
from service.auth.apikeys import create_key
from service.clock import FakeClock
from service.deps import Deps
from service.infra.settings import Settings
from service.queue import registrations
from service.stock import holds
from service.web.app import create_app
from tests.serve import selling_launch

Client = AsyncTestClient[Litestar]
SITE = "http://testserver.local"
NEW = "/console/launches/new"


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[Client]:
    routed = create_app(msgspec.structs.replace(settings, background=False), clock=clock)
    async with AsyncTestClient(routed, base_url=SITE) as c:
        yield c


async def _signed_in(deps: Deps, app: Client, role: str = "operator", **scope: str) -> None:
    key = await create_key(deps.pool, role, **scope)  # type: ignore[arg-type]
    r = await app.post(
        "/staff/login", data={"key": key, "next": "/console"}, follow_redirects=False
    )
    assert r.status_code == 303, r.text


async def test_times_out_of_order_are_field_errors_and_the_values_stay(
    deps: Deps, app: Client
) -> None:
    await _signed_in(deps, app)
    form = {
        "name": "Fairphone 6",
        "description": "The repairable phone",
        "hold_seconds": "300",
        "time_zone": "Europe/Berlin",
        "registration_opens_at": "2026-12-10T10:00",
        "registration_closes_at": "2026-12-09T10:00",  # before it opens
        "sale_starts_at": "2026-12-12T10:00",
    }
    r = await app.post(NEW, data=form)
    assert r.status_code == 422, r.text
    assert "text/html" in r.headers["content-type"]
    assert "Registration closes must be after registration opens." in r.text
    assert 'value="2026-12-09T10:00"' in r.text and "The repairable phone" in r.text
    assert 'id="f-registration_closes_at"' in r.text and 'aria-invalid="true"' in r.text
    assert await launches.list_launches(deps) == []


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("hold_seconds", "5", "Hold seconds must be at least 10."),
        ("hold_seconds", "soon", "Hold seconds must be a whole number."),
        ("time_zone", "Mars/Olympus", "is not a time zone"),
        ("id", "Has Spaces", "Launch id may hold only lower-case letters"),
        ("sale_starts_at", "not a time", "The sale starts must be a date and time."),
    ],
)
async def test_each_bad_value_is_said_at_its_field(
    deps: Deps, app: Client, field: str, value: str, words: str
) -> None:
    await _signed_in(deps, app)
    r = await app.post(NEW, data={"name": "Drop", field: value})
    assert r.status_code == 422, r.text
    assert words in r.text.replace("&#39;", "'")


async def test_lottery_without_size_is_the_apis_refusal(deps: Deps, app: Client) -> None:
    await _signed_in(deps, app)
    r = await app.post(NEW, data={"name": "Drop", "fairness_mode": "lottery"})
    assert r.status_code == 422
    assert "The lottery mode needs `lottery_size`" in r.text


async def test_a_good_form_creates_the_launch_in_its_zone(deps: Deps, app: Client) -> None:
    await _signed_in(deps, app)
    form = {
        "name": "Fairphone 6",
        "description": "Repairable",
        "time_zone": "Europe/Berlin",
        "registration_opens_at": "2026-12-10T10:00",
        "sale_starts_at": "2026-12-12T10:00",
    }
    r = await app.post(NEW, data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/launches/fairphone-6"
    made = await launches.get_launch(deps, "fairphone-6")
    assert made.description == "Repairable" and made.time_zone == "Europe/Berlin"
    assert made.registration_opens_at is not None
    assert made.registration_opens_at.isoformat() == "2026-12-10T09:00:00+00:00"
    public = await app.get("/api/launches/fairphone-6")
    assert public.json()["description"] == "Repairable"
    page = await app.get(r.headers["location"])
    assert "Launch “Fairphone 6” created, as a draft." in page.text
    again = await app.get(r.headers["location"])
    assert "created, as a draft" not in again.text, "a notice is shown once"


async def test_the_audit_trail_names_keys_by_their_label(deps: Deps, app: Client) -> None:
    key = await create_key(deps.pool, "operator", label="Marketing team")
    r = await app.post(
        "/staff/login", data={"key": key, "next": "/console"}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    r = await app.post(NEW, data={"name": "Audit me"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = (await app.get(r.headers["location"])).text
    trail = page[page.index('id="audit"') :]
    assert "Marketing team" in trail
    assert "key:" not in trail.replace('value="key:', "")  # only the filter's values name ids


async def test_an_allocation_below_what_is_held_is_refused_in_words(
    deps: Deps, app: Client
) -> None:
    regs = await selling_launch(deps, stores=("S1",), units=3, registrations=2)
    await holds.reserve(deps, "drop", regs[0], "S1", "K1")
    await holds.reserve(deps, "drop", regs[1], "S1", "K1")
    await _signed_in(deps, app)
    r = await app.post("/console/launches/drop/allocations", data={"alloc:S1/K1": "1"})
    assert r.status_code == 200 and r.url.path == "/console/launches/drop"
    assert "cannot go down to 1, as 2 unit(s) are held and 0 reserved" in r.text
    assert "cannot go below 2" in r.text
    assert 'value="1"' in r.text, "what was typed stays in the cell"
    r = await app.post("/console/launches/drop/allocations", data={"alloc:S1/K1": "2"})
    assert "1 allocation(s) changed." in r.text


@pytest.mark.parametrize(("role", "scope"), [("staff", {"store_id": "S1"}), ("agent", {})])
async def test_other_roles_are_refused(
    deps: Deps, app: Client, role: str, scope: dict[str, str]
) -> None:
    await selling_launch(deps, units=1, registrations=0)
    await _signed_in(deps, app, role, **scope)
    for path in ("/console", NEW, "/console/launches/drop"):
        r = await app.get(path)
        assert r.status_code == 403, path
    r = await app.post(NEW, data={"name": "Mine"})
    assert r.status_code == 403
    assert await launches.list_launches(deps) != [] and len(await launches.list_launches(deps)) == 1


async def test_a_shopper_or_nobody_is_sent_to_sign_in(deps: Deps, app: Client) -> None:
    regs = await selling_launch(deps, units=1, registrations=1)
    shopper = await registrations.issue_token(deps, "drop", regs[0])
    app.cookies.set("fd_shopper", shopper.token)
    for headers in ({}, {"Authorization": f"Bearer {shopper.token}"}):
        r = await app.get("/console", headers=headers, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/staff/login")
        r = await app.post(NEW, data={"name": "X"}, headers=headers, follow_redirects=False)
        assert r.status_code == 303 and len(await launches.list_launches(deps)) == 1


async def test_operator_and_admin_get_in(deps: Deps, app: Client) -> None:
    await selling_launch(deps, units=1, registrations=0)
    for role in ("operator", "admin"):
        await _signed_in(deps, app, role)
        r = await app.get("/console")
        assert r.status_code == 200 and "/console/launches/drop" in r.text


async def test_another_sites_page_cannot_post(deps: Deps, app: Client) -> None:
    await selling_launch(deps, units=1, registrations=0)
    await _signed_in(deps, app)
    evil = {"Origin": "https://evil.example"}
    for path, form in (
        (NEW, {"name": "Evil"}),
        ("/console/launches/drop/lifecycle", {"action": "close", "confirmed": "yes"}),
        ("/console/launches/drop/allocations", {"alloc:S1/K1": "0"}),
        ("/console/launches/drop/import", {"list": "email\nmallory@example.com\n"}),
        ("/console/launches/drop/items", {"table": "stores", "id": "EVIL", "name": "Evil"}),
        ("/console/launches/drop/edit", {"name": "Evil"}),
    ):
        r = await app.post(path, data=form, headers=evil)
        assert r.status_code == 403 and "another site" in r.text, path
    assert (await launches.get_launch(deps, "drop")).state == "selling"
    assert (await launches.get_launch(deps, "drop")).name != "Evil"
    assert len(await launches.list_launches(deps)) == 1
    assert not await deps.pool.fetchval("SELECT count(*) FROM registrations")
    assert [s.id for s in await launches.list_items(deps, "drop", "stores")] == ["S1"]


async def test_an_uploaded_json_list_reports_each_kind_of_line(deps: Deps, app: Client) -> None:
    await selling_launch(deps, units=1, registrations=0)
    await _signed_in(deps, app)
    body = (
        b'[{"email": "ada@example.com"}, {"email": "ADA@example.com"},'
        b' {"email": "nobody"}, {"mail": "x@example.com"}]'
    )
    r = await app.post(
        "/console/launches/drop/import", files={"file": ("list.json", body, "application/json")}
    )
    assert r.status_code == 200 and r.url.path == "/console/launches/drop"
    text = r.text.replace("&#39;", "'")
    assert "Imported: 1 accepted, 1 duplicate(s), 2 invalid line(s)." in text
    assert "'nobody' is not an e-mail address" in text
    assert '<td class="n">2</td><td>duplicate</td>' in text
    r = await app.post("/console/launches/drop/import", data={"list": "email\nada@example.com\n"})
    assert '<td class="n">2</td><td>duplicate</td>' in r.text, "registered by the first import"
    assert "Imported: 0 accepted, 1 duplicate(s), 0 invalid line(s)." in r.text
    r = await app.post("/console/launches/drop/import", data={"list": "name\nAda\n"})
    assert "The CSV needs a header row with an `email` column." in r.text


async def test_an_irreversible_step_is_asked_once_more(deps: Deps, app: Client) -> None:
    await selling_launch(deps, units=1, registrations=0)
    await _signed_in(deps, app)
    step = {"action": "close", "to": ""}
    r = await app.post("/console/launches/drop/lifecycle", data=step)
    assert r.status_code == 200 and "This cannot be undone." in r.text
    assert 'name="confirmed" value="yes"' in r.text
    assert (await launches.get_launch(deps, "drop")).state == "selling"
    r = await app.post(
        "/console/launches/drop/lifecycle", data=step | {"confirmed": "yes", "reason": "done"}
    )
    assert "The launch is now: Sale closed." in r.text
    assert (await launches.get_launch(deps, "drop")).state == "closed"
    r = await app.post("/console/launches/drop/lifecycle", data={"action": "pause"})
    assert r.url.path == "/console/launches/drop"  # pause needs no second asking


async def test_a_key_for_one_launch_sees_only_that_one(deps: Deps, app: Client) -> None:
    await selling_launch(deps, units=1, registrations=0)
    await _signed_in(deps, app, "operator", launch_id="other")
    assert (await app.get("/console/launches/drop")).status_code == 403
    assert "/console/launches/drop" not in (await app.get("/console")).text
    assert (await app.post(NEW, data={"name": "Mine"})).status_code == 403


async def test_the_launch_page_links_the_apis_exports(deps: Deps, app: Client) -> None:
    await selling_launch(deps, units=1, registrations=0)
    await _signed_in(deps, app)
    page = (await app.get("/console/launches/drop")).text
    for name, label in (
        ("registrations", "Registrations"),
        ("reservations", "Reservations"),
        ("audit", "Audit"),
    ):
        assert f'href="/api/admin/launches/drop/exports/{name}.csv"' in page
        assert f"{label} (CSV)" in page


async def test_a_launchs_settings_are_edited_with_the_patch_rules(deps: Deps, app: Client) -> None:
    await selling_launch(deps, units=1, registrations=0)  # selling: the draw's rules are set
    await _signed_in(deps, app)
    form = await app.get("/console/launches/drop/edit")
    assert form.status_code == 200 and 'name="fairness_mode"' in form.text
    values = {
        "name": "Fairphone 6",
        "description": "Now with a longer battery life",
        "time_zone": "Europe/Berlin",
        "sale_starts_at": "2026-01-02T10:00",
        "sale_ends_at": "2026-01-02T09:00",  # before the sale starts
    }
    launch = await launches.get_launch(deps, "drop")
    values |= {
        f: str(getattr(launch, f))
        for f in ("hold_seconds", "per_customer_limit", "admit_rate", "active_cap", "fairness_mode")
    } | {"admission_window_seconds": str(launch.admission_window_seconds)}
    r = await app.post("/console/launches/drop/edit", data=values)
    assert r.status_code == 422 and "The sale ends must be after the sale starts." in r.text
    assert "Nothing was saved" in r.text
    r = await app.post("/console/launches/drop/edit", data=values | {"sale_ends_at": ""})
    assert r.url.path == "/console/launches/drop" and "Launch settings saved." in r.text
    now = await launches.get_launch(deps, "drop")
    assert now.description == "Now with a longer battery life" and now.sale_ends_at is None
    assert now.sale_starts_at is not None
    assert now.sale_starts_at.isoformat() == "2026-01-02T09:00:00+00:00"
    again = await app.get("/console/launches/drop/edit")
    assert 'value="2026-01-02T10:00"' in again.text, "times are shown in the launch's zone"
    other = "fifo" if launch.fairness_mode != "fifo" else "prequeue-shuffle"
    r = await app.post("/console/launches/drop/edit", data=values | {"fairness_mode": other})
    assert r.status_code == 422
    assert "The queue order cannot change once registration has closed" in r.text
