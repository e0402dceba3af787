"""Bad input never gets a 500: every failure is a 4xx RFC 9457 problem with a stable type.

The app runs in Litestar's test client (its own event loop), so everything it needs —
the launch, tokens, API keys — is made with the test's own pool before it starts.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar, get
from litestar.params import FromPath
from litestar.testing import AsyncTestClient

from service import errors
from service.auth.apikeys import ROLES, Role, create_key
from service.auth.tokens import ShopperClaims, TokenSigner
from service.clock import FakeClock
from service.deps import Deps
from service.errors import ALL_ERRORS, PROBLEM_BASE
from service.infra.settings import Settings
from service.queue.registrations import issue_token
from service.queue.status import QueueWatch
from service.queue.tickets import TicketClaims
from service.web.app import create_app
from service.web.problems import EXCEPTION_HANDLERS, MEDIA_TYPE
from tests.serve import selling_launch, serving, tickets_for, until_admitted

L = "drop"
Client = AsyncTestClient[Litestar]


@dataclass
class Shop:
    client: Client
    deps: Deps
    token: str
    """The shopper's link token (their reservations)."""
    ticket: str
    """The shopper's queue ticket, admitted (holds)."""
    keys: dict[Role, str]
    revoked: str

    def shopper(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def admitted(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.ticket}"}

    def key(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


@pytest.fixture
async def shop(deps: Deps, settings: Settings, clock: FakeClock) -> AsyncIterator[Shop]:
    regs = await selling_launch(deps, L, units=2, registrations=2)
    token = (await issue_token(deps, L, regs[0])).token
    (ticket,) = await tickets_for(deps, L, regs[:1])
    watch = QueueWatch(deps)  # admission grows with time, and the app's clock stands still
    await watch.refresh(L)
    clock.advance(1)
    assert (await watch.refresh(L)).admitted == 1
    keys = {
        role: await create_key(deps.pool, role, store_id="S1" if role == "staff" else None)
        for role in ROLES
    }
    revoked = await create_key(deps.pool, "admin")
    await deps.pool.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE id = $1", revoked.split("_")[1]
    )
    async with AsyncTestClient(create_app(settings, clock)) as client:
        yield Shop(client, deps, token, ticket, keys, revoked)


def problem(
    r: httpx.Response, status: int, type_: str, says: str = "", fields: list[str] | None = None
) -> dict[str, Any]:
    """Check one problem response; returns its body."""
    where = f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:300]}"
    assert r.status_code == status, where
    assert r.headers["content-type"].startswith(MEDIA_TYPE), where
    body: dict[str, Any] = r.json()
    assert body["type"] == PROBLEM_BASE + type_, where
    assert body["status"] == status and body["title"], where
    assert says.lower() in body["detail"].lower(), where
    if fields is not None:
        assert body["fields"] == fields, where
    return body


async def test_unknown_launches_stores_skus_holds_and_reservations_are_404(shop: Shop) -> None:
    c, me, admin = shop.client, shop.shopper(), shop.key("operator")
    turn = shop.admitted()
    problem(await c.get("/api/launches/nope/"), 404, "not-found", "nope")
    problem(await c.get("/api/admin/launches/nope", headers=admin), 404, "not-found", "nope")
    for store, sku, says in (("NOPE", "K1", "store 'NOPE'"), ("S1", "NOPE", "SKU 'NOPE'")):
        r = await c.put(
            f"/api/admin/launches/{L}/allocations/{store}/{sku}",
            json={"allocated": 3},
            headers=admin,
        )
        problem(r, 404, "not-found", says)
        r = await c.post(
            f"/api/launches/{L}/holds", json={"store_id": store, "sku_id": sku}, headers=turn
        )
        problem(r, 404, "not-found", "no such store or product")
    problem(
        await c.post(f"/api/launches/{L}/holds/{'x' * 2000}/confirm", headers=me),
        404,
        "hold-not-found",
    )
    problem(await c.delete(f"/api/launches/{L}/holds/nohold", headers=me), 404, "hold-not-found")
    problem(
        await c.post(f"/api/launches/{L}/reservations/12345/cancel", headers=me),
        404,
        "not-found",
        "reservation",
    )
    problem(
        await c.post(f"/api/admin/launches/{L}/registrations/99999/token", headers=admin),
        404,
        "not-found",
        "registration",
    )
    problem(
        await c.post(f"/api/launches/{L}/reservations/abc/cancel", headers=me), 404, "not-found"
    )
    problem(await c.get("/nowhere"), 404, "not-found")
    problem(await c.delete(f"/api/launches/{L}/"), 405, "method-not-allowed")


ITEM = {"store_id": "S1", "sku_id": "K1"}
VALID = b'{"store_id": "S1", "sku_id": "K1"}'
HOLD_BODIES: list[tuple[bytes | object, str, str, list[str] | None]] = [
    # (body: raw bytes or a JSON value, problem type, detail says, fields)
    (b"{not json", "bad-request", "JSON is malformed", None),
    (b"", "invalid-request", "body is required", []),
    (["S1", "K1"], "invalid-request", "expected `object`", []),
    (b"null", "invalid-request", "expected `object`", []),
    ({"store_id": 5, "sku_id": "K1"}, "invalid-request", "store_id", ["store_id"]),
    ({"store_id": "S1", "sku_id": ["K1"]}, "invalid-request", "sku_id", ["sku_id"]),
    ({"store_id": "S1"}, "invalid-request", "sku_id", ["sku_id"]),
    ({"store_id": "S1", "sku_id": "K1", "colour": "red"}, "invalid-request", "colour", ["colour"]),
    ({"store_id": "a b", "sku_id": "K1"}, "invalid-request", "store_id", ["store_id"]),
    ({"store_id": "S" * 41, "sku_id": "K1"}, "invalid-request", "store_id", ["store_id"]),
]


@pytest.mark.parametrize("case", range(len(HOLD_BODIES)))
async def test_malformed_hold_bodies_are_400_naming_the_field(shop: Shop, case: int) -> None:
    body, type_, says, fields = HOLD_BODIES[case]
    kwargs: dict[str, Any] = {"content": body} if isinstance(body, bytes) else {"json": body}
    headers = {**shop.admitted(), "content-type": "application/json"}
    r = await shop.client.post(f"/api/launches/{L}/holds", headers=headers, **kwargs)
    problem(r, 400, type_, says, fields)


async def test_bad_admin_input_is_4xx_naming_the_field(shop: Shop) -> None:
    c, h = shop.client, shop.key("operator")
    for body, field in (
        ({"id": "Bad Id", "name": "x"}, "id"),
        ({"id": "drop2", "name": ""}, "name"),
        ({"id": "drop2", "name": "x", "hold_seconds": 5}, "hold_seconds"),
        ({"id": "drop2", "name": "x", "per_customer_limit": 99}, "per_customer_limit"),
        ({"id": "drop2", "name": "x", "sale_starts_at": "tomorrow"}, "sale_starts_at"),
        ({"id": "drop2", "name": "x", "fairness_mode": "fastest"}, "fairness_mode"),
        ({"id": "drop2", "name": "x", "owner": "me"}, "owner"),
        ({"name": "x"}, "id"),
    ):
        problem(
            await c.post("/api/admin/launches", json=body, headers=h),
            400,
            "invalid-request",
            field,
            [field],
        )
    for value in (-3, "ten", 10**7):
        r = await c.put(
            f"/api/admin/launches/{L}/allocations/S1/K1", json={"allocated": value}, headers=h
        )
        problem(r, 400, "invalid-request", "allocated", ["allocated"])
    url = f"/api/admin/launches/{L}/transitions"
    problem(
        await c.post(url, json={"action": "fly"}, headers=h),
        400,
        "invalid-request",
        "action",
        ["action"],
    )
    r = await c.post(url, json={"action": "advance"}, headers=h)
    assert problem(r, 422, "invalid-field", "`to`")["fields"] == ["to"]
    problem(
        await c.post(url, json={"action": "advance", "to": "draft"}, headers=h),
        409,
        "invalid-transition",
        "selling to draft",
    )
    for query, field in (("limit=abc", "limit"), ("limit=0", "limit"), ("after=-1", "after")):
        r = await c.get(f"/api/admin/launches/{L}/registrations?{query}", headers=h)
        problem(r, 400, "invalid-request", field, [field])
    r = await c.post(f"/api/launches/{L}/reservations/{10**30}/cancel", headers=shop.shopper())
    problem(r, 400, "invalid-request", "reservation_id", ["reservation_id"])

    imports = f"/api/admin/launches/{L}/registrations/import"
    for content, kind, status, type_, says in (
        (b"\xff\xfeemail\n", "text/csv", 400, "bad-request", "UTF-8"),
        (b"name\nAda\n", "text/csv", 422, "invalid-field", "email"),
        (b'{"email": "a@example.com"}', "application/json", 400, "bad-request", "JSON list"),
        (b"<list/>", "text/xml", 400, "bad-request", "text/csv"),
    ):
        r = await c.post(imports, content=content, headers={**h, "content-type": kind})
        problem(r, status, type_, says)


async def test_bodies_over_the_limit_are_413(shop: Shop, settings: Settings) -> None:
    c, limit = shop.client, settings.max_body_bytes
    headers = {**shop.admitted(), "content-type": "application/json"}
    over = VALID + b" " * (limit + 1 - len(VALID))
    problem(
        await c.post(f"/api/launches/{L}/holds", content=over, headers=headers),
        413,
        "payload-too-large",
    )
    r = await c.post("/api/admin/launches", content=over, headers={**headers, **shop.key("admin")})
    problem(r, 413, "payload-too-large")
    at_limit = VALID + b" " * (limit - len(VALID))
    r = await c.post(f"/api/launches/{L}/holds", content=at_limit, headers=headers)
    assert r.status_code == 201, r.text


async def test_bodies_over_the_limit_are_413_on_the_real_server(deps: Deps) -> None:
    """Under granian, with and without Content-Length (the test client cannot stream).

    A small limit: a client still sending a large body when the server answers early
    and closes may see a reset instead of the 413, whatever the app does.
    """
    small = msgspec.structs.replace(deps.settings, max_body_bytes=4096)
    regs = await selling_launch(deps, L, units=2, registrations=1)
    (ticket,) = await tickets_for(deps, L, regs)
    headers = {"Authorization": f"Bearer {ticket}", "content-type": "application/json"}

    async def chunks(n: int) -> AsyncIterator[bytes]:  # chunked: no Content-Length
        yield VALID
        for _ in range(n - len(VALID)):
            yield b" "

    with serving(small) as base:
        await until_admitted(deps, L, 1)
        async with httpx.AsyncClient(base_url=base, headers=headers) as c:
            url = f"/api/launches/{L}/holds"
            problem(await c.post(url, content=VALID + b" " * 4096), 413, "payload-too-large")
            problem(await c.post(url, content=chunks(4097)), 413, "payload-too-large")
            assert (await c.post(url, content=chunks(4096))).status_code == 201


def tampered(token: str) -> str:
    return token[:-3] + ("BBB" if token.endswith("AAA") else "AAA")


async def test_bad_expired_or_foreign_queue_tickets_cannot_hold(
    shop: Shop, clock: FakeClock
) -> None:
    later, secret = clock.now_ms() + 60_000, shop.deps.settings.secret
    sign = TokenSigner(secret).sign
    for ticket, says in (
        (None, "no place in the queue"),
        ("garbage", "damaged"),
        (TokenSigner("not-" + secret).sign(TicketClaims(L, 1, 0, later)), "not genuine"),
        (tampered(shop.ticket), "not genuine"),
        (sign(TicketClaims(L, 1, 0, clock.now_ms())), "expired"),
        (sign(TicketClaims("other", 1, 0, later)), "another launch"),
        (sign(TicketClaims(L, 1, 0, later, kind="shopper")), "not a queue ticket"),
        (shop.token, "damaged"),  # a registration's link token is no place in the queue
        (shop.keys["admin"], "damaged"),
    ):
        headers = {} if ticket is None else {"Authorization": f"Bearer {ticket}"}
        r = await shop.client.post(f"/api/launches/{L}/holds", json=ITEM, headers=headers)
        problem(r, 401, "unauthorized", says)
    r = await shop.client.post("/api/launches/other/holds", json=ITEM, headers=shop.admitted())
    problem(r, 401, "unauthorized", "another launch")
    # A genuine ticket whose turn has not come is refused too, as not admitted.
    waiting = sign(TicketClaims(L, 2, 1, later))
    r = await shop.client.post(
        f"/api/launches/{L}/holds", json=ITEM, headers={"Authorization": f"Bearer {waiting}"}
    )
    problem(r, 403, "not-admitted")


async def test_bad_expired_or_foreign_shopper_tokens_are_401(shop: Shop, clock: FakeClock) -> None:
    c, secret = shop.client, shop.deps.settings.secret
    later = clock.now_ms() + 60_000
    sign = TokenSigner(secret).sign
    for token, says in (
        (None, "not signed in"),
        ("garbage", "damaged"),
        (TokenSigner("not-" + secret).sign(ShopperClaims(L, 1, later)), "not genuine"),
        (tampered(shop.token), "not genuine"),
        (sign(ShopperClaims(L, 1, clock.now_ms())), "expired"),
        (sign(ShopperClaims("other", 1, later)), "another launch"),
        (shop.keys["admin"], "damaged"),
    ):
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        for method, path in (
            ("GET", f"/api/launches/{L}/me"),
            ("POST", f"/api/launches/{L}/holds/h1/confirm"),
            ("DELETE", f"/api/launches/{L}/holds/h1"),
            ("POST", f"/api/launches/{L}/reservations/1/cancel"),
        ):
            problem(await c.request(method, path, headers=headers), 401, "unauthorized", says)
    # A genuine token for this launch opens no other launch, and expires.
    problem(await c.get("/api/launches/other/me", headers=shop.shopper()), 401, "unauthorized")
    assert (await c.get(f"/api/launches/{L}/me", headers=shop.shopper())).status_code == 200
    clock.advance(shop.deps.settings.shopper_token_ttl_seconds)
    r = await c.get(f"/api/launches/{L}/me", headers=shop.shopper())
    problem(r, 401, "unauthorized", "expired")
    cookie = {"cookie": "fd_shopper=garbage"}
    problem(await c.get(f"/api/launches/{L}/me", headers=cookie), 401, "unauthorized", "damaged")


async def test_missing_or_invalid_api_keys_are_401_and_wrong_roles_403(shop: Shop) -> None:
    c, admin = shop.client, shop.keys["admin"]
    for headers, says in (
        ({}, "API key"),
        ({"Authorization": "Bearer nope"}, "malformed"),
        ({"Authorization": "Basic Zm9vOmJhcg=="}, "API key"),
        ({"Authorization": "Bearer fd_000000000000_secret"}, "unknown or revoked"),
        ({"Authorization": f"Bearer {admin[:-4]}AAAA"}, "unknown or revoked"),
        ({"Authorization": f"Bearer {shop.revoked}"}, "unknown or revoked"),
        ({"X-API-Key": "fd_x"}, "malformed"),
        (shop.shopper(), "malformed"),
    ):
        for method, path in (
            ("GET", "/api/admin/launches"),
            ("POST", f"/api/admin/launches/{L}/rebuild"),
            ("POST", "/api/admin/keys"),
        ):
            r = await c.request(method, path, headers=headers, json={"role": "agent"})
            problem(r, 401, "unauthorized", says)
    for role in ("staff", "agent"):
        problem(
            await c.get("/api/admin/launches", headers=shop.key(role)), 403, "forbidden", "operator"
        )
    r = await c.post("/api/admin/keys", json={"role": "admin"}, headers=shop.key("operator"))
    problem(r, 403, "forbidden", "admin")
    assert (await c.get("/api/admin/launches", headers=shop.key("operator"))).status_code == 200


# The whole table: each domain error raised in a real app, through the one mapping.
BY_NAME = {cls.__name__: cls for cls in ALL_ERRORS}


@get("/raise/{name:str}", sync_to_thread=False)
def raise_named(name: FromPath[str]) -> None:
    if name == "RuntimeError":
        raise RuntimeError("boom")
    raise BY_NAME[name](f"because of {name}", field="f")


def test_all_errors_lists_every_domain_error() -> None:
    defined = {
        obj
        for obj in vars(errors).values()
        if inspect.isclass(obj)
        and issubclass(obj, errors.FairdropError)
        and obj is not errors.FairdropError
    }
    assert defined == set(ALL_ERRORS)
    types = [cls.type for cls in ALL_ERRORS]
    assert len(set(types)) == len(types), "each error has its own problem type"


async def test_every_domain_error_maps_to_its_problem_response() -> None:
    app = Litestar([raise_named], exception_handlers=EXCEPTION_HANDLERS)
    async with AsyncTestClient(app) as c:
        for cls in ALL_ERRORS:
            r = await c.get(f"/raise/{cls.__name__}")
            body = problem(r, cls.status, cls.type, f"because of {cls.__name__}")
            assert body["title"] == cls.title
            if issubclass(cls, errors.InvalidRequest):  # field errors: one shape
                assert body["fields"] == ["f"] and body["errors"][0]["field"] == "f"
            else:
                assert body["field"] == "f"
            assert body["instance"] == f"/raise/{cls.__name__}"
            assert (r.headers.get("retry-after") is not None) == (cls.status == 503)
        # Anything unforeseen is still a problem response, and says nothing of the cause.
        body = problem(await c.get("/raise/RuntimeError"), 500, "internal-error")
        assert "boom" not in str(body)
