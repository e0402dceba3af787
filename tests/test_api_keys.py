"""API keys: listed without secrets, revoked at once on every worker, each change an
event, last use noted at most once a minute, and people shown a key's label, not its id."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import msgspec
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.auth.apikeys import authenticate, create_key
from service.clock import FakeClock
from service.customers import selfservice
from service.customers.search import view_of
from service.deps import Deps
from service.infra.settings import Settings
from service.pickup import desk
from service.pickup.windows import now_of
from service.stock import confirm, holds
from service.web.app import create_app
from tests.serve import selling_launch, server_env

Client = AsyncTestClient[Litestar]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_keys_are_listed_and_revoked_at_once_on_every_worker(
    deps: Deps, settings: Settings, clock: FakeClock, admin_key: str
) -> None:
    # Two app instances are two workers: nothing about a key is kept in either.
    async with (
        AsyncTestClient(create_app(settings, clock)) as one,
        AsyncTestClient(create_app(settings, clock)) as two,
    ):
        made = await one.post(
            "/api/admin/keys",
            json={"role": "staff", "store_id": "S1", "label": "Desk 2"},
            headers=bearer(admin_key),
        )
        assert made.status_code == 201, made.text
        key = made.json()["key"]
        key_id = key.split("_")[1]
        assert (await two.get("/api/admin/keys", headers=bearer(key))).status_code == 403
        listed = (await two.get("/api/admin/keys", headers=bearer(admin_key))).json()
        mine = next(k for k in listed if k["id"] == key_id)
        assert mine["label"] == "Desk 2" and mine["role"] == "staff" and mine["store_id"] == "S1"
        assert mine["created_at"] and mine["revoked_at"] is None
        assert mine["last_used_at"] is not None, "it was used a moment ago"
        assert key.split("_", 2)[2] not in str(listed), "a key's secret is never listed"

        revoked = await one.delete(f"/api/admin/keys/{key_id}", headers=bearer(admin_key))
        assert revoked.status_code == 200 and revoked.json()["revoked_at"], revoked.text
        for worker in (one, two):
            r = await worker.get("/api/staff/launches/drop/pickups", headers=bearer(key))
            assert r.status_code == 401, "refused at once, by every worker"
        again = await two.delete(f"/api/admin/keys/{key_id}", headers=bearer(admin_key))
        assert again.json()["revoked_at"] == revoked.json()["revoked_at"], "revoking is idempotent"
        unknown = await one.delete("/api/admin/keys/abc123", headers=bearer(admin_key))
        assert unknown.status_code == 404 and unknown.json()["type"].endswith("/not-found")

    events = await deps.pool.fetch(
        "SELECT actor, kind, subject, data FROM events WHERE kind LIKE 'key.%' ORDER BY id"
    )
    admin_actor = f"key:{admin_key.split('_')[1]}"
    mine_events = [(e["actor"], e["kind"]) for e in events if e["subject"] == f"key:{key_id}"]
    assert mine_events == [(admin_actor, "key.created"), (admin_actor, "key.revoked")]
    assert all(key.split("_", 2)[2] not in str(e["data"]) for e in events)


async def test_last_use_is_written_at_most_once_a_minute(deps: Deps) -> None:
    key = await create_key(deps.pool, "agent", label="Sam")
    key_id = key.split("_")[1]

    async def last_used() -> object:
        return await deps.pool.fetchval("SELECT last_used_at FROM api_keys WHERE id = $1", key_id)

    assert await last_used() is None
    start = now_of(deps)
    await authenticate(deps.pool, key, start)
    assert await last_used() == start
    xmin = await deps.pool.fetchval("SELECT xmin::text FROM api_keys WHERE id = $1", key_id)
    for seconds in (1, 30, 59):
        await authenticate(deps.pool, key, start + timedelta(seconds=seconds))
    assert await last_used() == start
    unchanged = await deps.pool.fetchval("SELECT xmin::text FROM api_keys WHERE id = $1", key_id)
    assert unchanged == xmin, "no write at all within the minute"
    later = start + timedelta(seconds=61)
    await authenticate(deps.pool, key, later)
    assert await last_used() == later


async def test_people_see_a_keys_label_never_its_id(deps: Deps) -> None:
    [reg] = await selling_launch(deps, stores=("S1",), units=2, registrations=1, limit=2)
    await deps.pool.execute("UPDATE stores SET name = 'London' WHERE id = 'S1'")
    labelled = await create_key(deps.pool, "staff", store_id="S1", label="Desk 2")
    unlabelled = await create_key(deps.pool, "staff", store_id="S1")
    codes = []
    for _ in range(2):
        hold = await holds.reserve(deps, "drop", reg, "S1", "K1")
        codes.append((await confirm.confirm(deps, "drop", reg, hold.hold_id)).code)
    for code, key in zip(codes, (labelled, unlabelled), strict=True):
        actor = f"key:{key.split('_')[1]}"
        await desk.collect(deps, "drop", "S1", code, actor=actor)

    listing = await desk.pickup_list(deps, "drop", "S1")
    assert sorted(c.collected_by or "" for c in listing.reservations) == [
        "Desk 2",
        "staff at London",
    ]
    assert "key:" not in desk.pickup_csv(listing)
    view = await view_of(deps, "drop", reg)
    collected = [e for e in view.timeline if e.kind == "reservation.collected"]
    assert sorted(e.by for e in collected) == ["store staff", "store staff (Desk 2)"]
    mine = await selfservice.history(deps, "drop", reg)
    assert sorted(h.by for h in mine if h.kind == "reservation.collected") == [
        "store staff",
        "store staff (Desk 2)",
    ], "the customer's own history names staff by their key's label too"
    shown = [e.by for e in view.timeline] + [h.by for h in mine]
    assert all("key:" not in by for by in shown)
    assert "key:" not in str(msgspec.to_builtins(mine))


def test_the_command_line_lists_and_revokes_keys(settings: Settings, admin_key: str) -> None:
    env = {**server_env(settings), "PYTHONPATH": os.getcwd()}

    def fairdrop(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "service", "admin", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    made = fairdrop("create-key", "--role", "agent", "--label", "Phone team")
    assert made.returncode == 0, made.stderr
    key_id = made.stdout.strip().split("_")[1]
    listed = fairdrop("list-keys")
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["id", "label", "role", "store", "created", "last", "used", "revoked"]
    row = next(r for r in rows if r.startswith(key_id))
    assert "Phone team" in row and " agent " in row and row.rstrip().endswith("-")
    assert made.stdout.strip().split("_", 2)[2] not in listed.stdout
    revoked = fairdrop("revoke-key", key_id)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout, revoked.stderr
    assert not next(r for r in fairdrop("list-keys").stdout.splitlines() if key_id in r).endswith(
        "-"
    )
    unknown = fairdrop("revoke-key", "nope")
    assert unknown.returncode != 0 and "No API key" in unknown.stderr
