"""Pages over plain HTTP (no browser): the app builds them without warnings, every
page carries its security headers, failures are pages, staff pages need a sign-in,
and the e-mailed API link sends a browser to the verification page."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from service.admin import launches
from service.admin.models import LaunchCreate
from service.auth.apikeys import create_key
from service.deps import Deps
from tests.serve import selling_launch

A = {"actor": "test", "channel": "admin"}


async def test_pages_headers_errors_and_sign_in(deps: Deps, client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    await selling_launch(deps, units=2, registrations=1)
    launch = await client.get("/launches/drop")
    assert launch.status_code == 200 and "text/html" in launch.headers["content-type"]
    assert "script-src 'self'" in launch.headers["content-security-policy"]
    assert launch.headers["referrer-policy"] == "no-referrer"
    assert "Registration is closed" in launch.text  # the launch is selling

    missing = await client.get("/launches/nope")
    assert missing.status_code == 404 and "<h1" in missing.text, "a page, not problem+json"

    forged = await client.get("/launches/drop/verify", params={"token": "forged"})
    assert forged.status_code == 401 and "This link does not work" in forged.text
    assert "fd_shopper" not in forged.cookies

    # The API link in the e-mail: JSON for programs, the page for people.
    api = "/api/launches/drop/verify?token=forged"
    assert (await client.get(api)).headers["content-type"].startswith("application/problem+json")
    browser = await client.get(
        api, headers={"accept": "text/html,*/*;q=0.8"}, follow_redirects=False
    )
    assert browser.status_code == 302
    assert browser.headers["location"] == "/launches/drop/verify?token=forged"

    for path in ("/desk/drop", "/ops/drop", "/agent", "/ops"):
        away = await client.get(path, follow_redirects=False)
        assert away.status_code == 303, path
        assert away.headers["location"] == f"/staff/login?next={path.replace('/', '%2F')}"

    key = await create_key(deps.pool, "staff", store_id="S1")
    wrong = await client.post("/staff/login", data={"key": "fd_x_y", "next": "/desk/drop"})
    assert wrong.status_code == 401 and "unknown or revoked" in wrong.text
    # Only paths on this site: never an open redirect.
    right = await client.post(
        "/staff/login", data={"key": key, "next": "//evil.example/x"}, follow_redirects=False
    )
    assert right.status_code == 303 and right.headers["location"] == "/desk"
    set_cookie = right.headers["set-cookie"].lower()
    assert "fd_key=" in set_cookie and "httponly" in set_cookie and "samesite=strict" in set_cookie
    desk = await client.get("/desk/drop")
    assert desk.status_code == 200 and "Pickup desk" in desk.text
    # The cookie is the key for the API too, within the key's role and store.
    assert (await client.get("/api/staff/launches/drop/pickups")).status_code == 200
    assert (await client.get("/ops/drop")).status_code == 403
    assert (await client.get("/api/admin/launches")).status_code == 403

    await client.post("/staff/logout", follow_redirects=False)
    assert (await client.get("/desk/drop", follow_redirects=False)).status_code == 303


async def test_home_lists_the_public_launches(deps: Deps, client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    await selling_launch(deps, units=1, registrations=1)
    await deps.pool.execute("UPDATE launches SET name = 'Fairphone <6>'")
    await launches.create_launch(deps, LaunchCreate(id="secret-next", name="Not yet public"), **A)

    home = await client.get("/")
    assert home.status_code == 200 and "text/html" in home.headers["content-type"]
    assert "script-src 'self'" in home.headers["content-security-policy"]
    assert "<script>" not in home.text, "no inline script"
    assert "Fairphone &lt;6&gt;" in home.text and "On sale now" in home.text
    for path in ("/launches/drop", "/launches/drop/queue", "/launches/drop/draw"):
        assert f'href="{path}"' in home.text, path
    assert 'href="/staff/login"' in home.text
    # A draft is not public: neither its name nor its pages are listed.
    assert "Not yet public" not in home.text and "secret-next" not in home.text


async def test_home_with_no_launches_says_so(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    home = await client.get("/")
    assert home.status_code == 200 and "No launches" in home.text
