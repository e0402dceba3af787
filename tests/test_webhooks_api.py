"""The webhook API: operators register, list, change, rotate, delete and replay; bad
URLs (other schemes, credentials, private and loopback addresses) and unknown event
types are refused with problem details; other roles get 403; the OpenAPI document
describes every event type in its `webhooks` section."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.admin import launches
from service.admin.models import LaunchCreate
from service.auth.apikeys import create_key
from service.deps import Deps
from service.infra.settings import Settings
from service.web.app import create_app
from service.webhooks.payloads import EVENT_TYPES
from tests.serve import ACTOR

L = "drop"
PUBLIC = "https://8.8.8.8/hooks"  # a public address; nothing is sent in these tests
BASE = f"/api/admin/launches/{L}/webhooks"
Client = AsyncTestClient[Litestar]


@pytest.fixture
async def keys(deps: Deps) -> dict[str, dict[str, str]]:
    await launches.create_launch(deps, LaunchCreate(id=L, name="Drop"), **ACTOR)
    made = {
        role: await create_key(deps.pool, role, store_id="S1" if role == "staff" else None)  # type: ignore[arg-type]
        for role in ("admin", "operator", "staff", "agent")
    }
    return {role: {"Authorization": f"Bearer {key}"} for role, key in made.items()}


async def _client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Client]:
    """The app as deployed: private and loopback targets refused."""
    async for c in _client(msgspec.structs.replace(settings, background=False)):
        yield c


@pytest.fixture
async def api_private(settings: Settings) -> AsyncIterator[Client]:
    """The app with FAIRDROP_WEBHOOK_ALLOW_PRIVATE=1."""
    s = msgspec.structs.replace(settings, background=False, webhook_allow_private=True)
    async for c in _client(s):
        yield c


def _problem(response: object, status: int, kind: str) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["type"] == f"https://fairdrop.dev/problems/{kind}", body
    return body


async def test_register_list_change_rotate_and_delete(
    api: Client, keys: dict[str, dict[str, str]], deps: Deps
) -> None:
    op = keys["operator"]
    r = await api.post(BASE, json={"url": PUBLIC, "events": ["reservation.confirmed"]}, headers=op)
    assert r.status_code == 201, r.text
    made = r.json()
    assert re.fullmatch(r"wh_[0-9a-f]{16}", made["id"])
    assert made["secret"].startswith("whsec_")
    assert len(base64.b64decode(made["secret"].removeprefix("whsec_"))) == 32
    endpoint = made["endpoint"]
    assert (endpoint["url"], endpoint["events"], endpoint["enabled"]) == (
        PUBLIC,
        ["reservation.confirmed"],
        True,
    )
    assert endpoint["counts"] == {"pending": 0, "delivered": 0, "failed": 0}
    one = f"{BASE}/{made['id']}"

    listed = await api.get(BASE, headers=op)
    assert [e["id"] for e in listed.json()] == [made["id"]]
    assert made["secret"] not in listed.text, "the secret is shown once"
    assert (await api.get(one, headers=op)).json()["deliveries"] == []

    off = (await api.patch(one, json={"enabled": False}, headers=op)).json()
    assert not off["enabled"] and off["disabled_reason"].startswith("switched off by an operator")
    on = (await api.patch(one, json={"enabled": True, "events": ["*"]}, headers=op)).json()
    assert (on["enabled"], on["disabled_reason"], on["events"]) == (True, None, ["*"])

    rotated = await api.post(f"{one}/rotate", json={"grace_seconds": 600}, headers=op)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert new["secret"].startswith("whsec_") and new["secret"] != made["secret"]
    until = datetime.fromisoformat(new["previous_secret_until"])
    assert 0 < (until - datetime.now(UTC)).total_seconds() <= 600  # the app's clock: the system's
    again = await api.post(f"{one}/rotate", headers=op)  # the body is optional
    assert again.status_code == 200 and again.json()["secret"] != new["secret"]

    assert (await api.get(f"{one}/deliveries", headers=op)).json() == []
    _problem(await api.post(f"{one}/deliveries/9/replay", headers=op), 404, "not-found")
    assert (await api.delete(one, headers=op)).status_code == 204
    _problem(await api.get(one, headers=op), 404, "not-found")
    _problem(await api.delete(one, headers=op), 404, "not-found")

    trail = await deps.pool.fetch(
        "SELECT kind, data::text AS data FROM events WHERE kind LIKE 'webhook.%' ORDER BY id"
    )
    assert [t["kind"] for t in trail] == [
        "webhook.created",
        "webhook.updated",
        "webhook.updated",
        "webhook.secret_rotated",
        "webhook.secret_rotated",
        "webhook.deleted",
    ]
    assert not any("whsec_" in t["data"] for t in trail), "no secret in the audit trail"


@pytest.mark.parametrize(
    ("body", "status", "kind", "field"),
    [
        ({"url": "ftp://8.8.8.8/x", "events": ["*"]}, 422, "invalid-field", "url"),
        ({"url": "https://me:pw@8.8.8.8/x", "events": ["*"]}, 422, "invalid-field", "url"),
        ({"url": "no url at all", "events": ["*"]}, 422, "invalid-field", "url"),
        ({"url": "http://xn--/", "events": ["*"]}, 422, "invalid-field", "url"),
        ({"url": "http://0x7f000001/", "events": ["*"]}, 422, "invalid-field", "url"),
        ({"url": "http://127.0.0.1:9/x", "events": ["*"]}, 422, "invalid-field", "url"),
        ({"url": "http://localhost/x", "events": ["*"]}, 422, "invalid-field", "url"),
        ({"url": "http://10.1.2.3/x", "events": ["*"]}, 422, "invalid-field", "url"),
        ({"url": "http://192.168.0.10/x", "events": ["*"]}, 422, "invalid-field", "url"),
        ({"url": "http://169.254.169.254/latest", "events": ["*"]}, 422, "invalid-field", "url"),
        ({"url": "http://[::1]/x", "events": ["*"]}, 422, "invalid-field", "url"),
        ({"url": "http://[::ffff:127.0.0.1]/x", "events": ["*"]}, 422, "invalid-field", "url"),
        ({"url": "http://unresolvable.invalid/x", "events": ["*"]}, 422, "invalid-field", "url"),
        ({"url": PUBLIC, "events": ["*", "hold.placed"]}, 422, "invalid-field", "events"),
        ({"url": PUBLIC, "events": ["no.such"]}, 400, "invalid-request", "events[0]"),
        ({"url": PUBLIC, "events": []}, 400, "invalid-request", "events"),
        ({"url": PUBLIC}, 400, "invalid-request", "events"),
        ({"url": PUBLIC, "events": ["*"], "secret": "mine"}, 400, "invalid-request", "secret"),
    ],
)
async def test_bad_registrations_are_refused_naming_the_field(
    api: Client,
    keys: dict[str, dict[str, str]],
    body: dict[str, object],
    status: int,
    kind: str,
    field: str,
) -> None:
    problem = _problem(await api.post(BASE, json=body, headers=keys["operator"]), status, kind)
    assert problem["fields"] == [field], problem
    assert (await api.get(BASE, headers=keys["operator"])).json() == []


async def test_private_targets_need_the_setting(
    api: Client, api_private: Client, keys: dict[str, dict[str, str]]
) -> None:
    body = {"url": "http://127.0.0.1:9/hooks", "events": ["*"]}
    problem = _problem(
        await api.post(BASE, json=body, headers=keys["operator"]), 422, "invalid-field"
    )
    assert "private or loopback" in str(problem["detail"])
    made = await api_private.post(BASE, json=body, headers=keys["operator"])
    assert made.status_code == 201, made.text
    one = f"{BASE}/{made.json()['id']}"
    patched = await api.patch(one, json={"url": "http://10.0.0.1/x"}, headers=keys["operator"])
    _problem(patched, 422, "invalid-field")
    _problem(
        await api.post("/api/admin/launches/nope/webhooks", json={"url": PUBLIC, "events": ["*"]},
                       headers=keys["operator"]),
        404,
        "not-found",
    )  # fmt: skip


async def test_only_operators_and_admins_manage_webhooks(
    api: Client, keys: dict[str, dict[str, str]]
) -> None:
    body = {"url": PUBLIC, "events": ["*"]}
    made = await api.post(BASE, json=body, headers=keys["admin"])
    assert made.status_code == 201, made.text
    one = f"{BASE}/{made.json()['id']}"
    calls = [
        ("POST", BASE, body),
        ("GET", BASE, None),
        ("GET", one, None),
        ("PATCH", one, {"enabled": False}),
        ("POST", f"{one}/rotate", {}),
        ("DELETE", one, None),
        ("GET", f"{one}/deliveries", None),
        ("POST", f"{one}/deliveries/1/replay", None),
    ]
    for method, url, json in calls:
        _problem(await api.request(method, url, json=json), 401, "unauthorized")
        for role in ("staff", "agent"):
            _problem(
                await api.request(method, url, json=json, headers=keys[role]), 403, "forbidden"
            )


async def test_the_openapi_document_describes_every_event_type(api: Client) -> None:
    doc = (await api.get("/schema/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    hooks = doc["webhooks"]
    assert sorted(hooks) == sorted(EVENT_TYPES)
    schemas = doc["components"]["schemas"]
    for event_type, item in hooks.items():
        post = item["post"]
        ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = schemas[ref.removeprefix("#/components/schemas/")]
        assert schema["properties"]["type"]["enum"] == [event_type]
        assert {"id", "version", "timestamp", "launch_id", "channel", "data"} <= set(
            schema["required"]
        ) | {"version"}
        data = schema["properties"]["data"]["$ref"].removeprefix("#/components/schemas/")
        assert data in schemas
        assert {p["name"] for p in post["parameters"]} == {
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
        }
        assert post["summary"]
    operations = {op["operationId"] for path in doc["paths"].values() for op in path.values()}
    assert {
        "createWebhook",
        "listWebhooks",
        "getWebhook",
        "updateWebhook",
        "rotateWebhookSecret",
        "deleteWebhook",
        "listWebhookDeliveries",
        "replayWebhookDelivery",
    } <= operations
