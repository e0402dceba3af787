"""The audit trail's channel: a shopper's request is recorded on the shopper's own
channel whatever `X-Fairdrop-Channel` says; a key's by the key's role."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from service.admin import launches
from service.admin.models import ItemCreate, LaunchCreate, Transition
from service.deps import Deps
from service.queue import signup
from service.web.app import create_app

A = {"actor": "test", "channel": "admin"}
Client = AsyncTestClient  # type: ignore[type-arg]


async def _channels(deps: Deps, kind: str) -> list[str]:
    rows = await deps.pool.fetch("SELECT channel FROM events WHERE kind = $1 ORDER BY id", kind)
    return [r["channel"] for r in rows]


async def test_a_shopper_cannot_choose_a_staff_channel(deps: Deps) -> None:
    await launches.create_launch(deps, LaunchCreate(id="l1", name="L", admit_rate=1000), **A)
    await launches.add_item(deps, "l1", "stores", ItemCreate(id="S1", name="S"), **A)
    await launches.add_item(deps, "l1", "skus", ItemCreate(id="K1", name="K"), **A)
    await launches.transition(deps, "l1", Transition(action="advance", to="registration_open"), **A)
    async with AsyncTestClient(create_app(deps.settings)) as http:
        for i, said in enumerate(["admin", "store", "phone", "app", "web"]):
            r = await http.post(
                "/api/launches/l1/registrations",
                json={"email": f"s{i}@example.com"},
                headers={"X-Fairdrop-Channel": said},
            )
            assert r.status_code == 202, r.text
        assert await _channels(deps, "registration.created") == ["web"] * 3 + ["app", "web"]
        reg = await deps.pool.fetchval(
            "SELECT id FROM registrations WHERE email = 's0@example.com'"
        )
        link = signup.verification_link(deps, "l1", reg)
        r = await http.get(
            link.removeprefix(deps.settings.base_url),
            headers={"X-Fairdrop-Channel": "admin", "Accept": "application/json"},
        )
        assert r.status_code == 200, r.text
        assert await _channels(deps, "registration.verified") == ["web"]


async def test_a_keys_channel_is_its_role(deps: Deps, admin_key: str) -> None:
    async with AsyncTestClient(create_app(deps.settings)) as http:
        r = await http.post(
            "/api/admin/keys",
            json={"role": "agent", "label": "desk phone"},
            headers={"Authorization": f"Bearer {admin_key}", "X-Fairdrop-Channel": "web"},
        )
        assert r.status_code == 201, r.text
    assert (await _channels(deps, "key.created"))[-1] == "admin", "not the header's web"
