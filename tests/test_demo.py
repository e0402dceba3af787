"""The demo's seed: one launch selling and one open for registration, a key and a
one-time sign-in link for every role, a sign-in link per shopper; `reset` drops the
demo's data and nothing else."""

from __future__ import annotations

from service import demo
from service.admin import launches
from service.auth import signin
from service.auth.apikeys import authenticate, create_key
from service.deps import Deps
from service.queue import signup
from service.queue.checkin import check_in
from service.stock import confirm, holds
from tests.serve import selling_launch


async def test_seed_gives_every_role_a_way_in(deps: Deps) -> None:
    info = await demo.seed(deps)
    assert info.launches == [
        ("demo", "Phone 17 launch (demo)", "selling"),
        ("demo-next", "Console 5 launch (demo)", "registration_open"),
    ]
    roles = {(k.role, k.store_id) for k in info.keys}
    assert roles == {
        ("operator", None),
        ("staff", "LDN"),
        ("staff", "MAN"),
        ("agent", None),
        ("admin", None),
    }
    for k in info.keys:
        who = await authenticate(deps.pool, k.key)
        assert (who.role, who.store_id) == (k.role, k.store_id)
        token = k.signin_path.removeprefix("/staff/login?token=")
        assert k.key.split("_", 2)[2] not in k.signin_path, "the key itself is not in the link"
        assert await signin.redeem_link(deps, token) == who

    assert [s.email for s in info.shoppers] == [f"shopper{i}@example.com" for i in range(1, 9)]
    for shopper in info.shoppers:
        token = shopper.link.split("token=")[1]
        assert shopper.link.startswith(f"{deps.settings.base_url}/api/launches/demo/verify?")
        assert (await signup.verify(deps, "demo", token, channel="web")).status == "verified"

    printed = demo.describe(info, "http://127.0.0.1:8123")
    assert "open http://127.0.0.1:8123/\n" in printed
    for k in info.keys:
        assert f"http://127.0.0.1:8123{k.signin_path}" in printed and k.key in printed
    for s in info.shoppers:
        assert s.link in printed and s.token in printed
    assert "http://127.0.0.1:8123/launches/demo-next" in printed
    assert "fairdrop outbox" in printed and "http://127.0.0.1:8123/outbox" in printed

    # The past and future dates on the launches move neither of them on its own.
    assert await launches.advance_due(deps) == []


async def test_the_selling_launch_sells(deps: Deps) -> None:
    await demo.seed(deps)
    info = await demo.seed(deps)  # a second run keeps the launches, makes new keys
    assert len(info.shoppers) == 8
    assert await deps.pool.fetchval("SELECT count(*) FROM launches") == 2
    assert await deps.pool.fetchval("SELECT count(*) FROM api_keys") == 2 * len(demo.KEYS)
    reg = (await deps.pool.fetchrow("SELECT id FROM registrations WHERE launch_id = 'demo'"))["id"]
    await check_in(deps, "demo", reg)
    hold = await holds.reserve(deps, "demo", reg, "LDN", "PHONE-128")
    reservation = await confirm.confirm(deps, "demo", reg, hold.hold_id)
    assert reservation.status == "confirmed"


async def test_reset_drops_the_demos_data_and_nothing_else(deps: Deps) -> None:
    await selling_launch(deps, "mine", units=2, registrations=2)
    mine_key = await create_key(deps.pool, "operator", label="demo of my own")
    mine_redis = {k async for k in deps.redis.scan_iter(match=f"{deps.settings.redis_prefix}*")}
    mine_rows = await _counts(deps, "mine")

    info = await demo.seed(deps)
    reg = (await deps.pool.fetchrow("SELECT id FROM registrations WHERE launch_id = 'demo'"))["id"]
    await check_in(deps, "demo", reg)
    hold = await holds.reserve(deps, "demo", reg, "LDN", "PHONE-128")
    await confirm.confirm(deps, "demo", reg, hold.hold_id)
    await signup.sign_up(deps, "demo-next", signup.SignUp(email="me@example.com"), channel="web")

    await demo.reset(deps)
    assert await deps.pool.fetchval("SELECT count(*) FROM launches WHERE id LIKE 'demo%'") == 0
    for table in ("reservations", "registrations", "events", "outbox", "units"):
        left = await deps.pool.fetchval(
            f"SELECT count(*) FROM {table} WHERE launch_id LIKE 'demo%'"
        )
        assert left == 0, table
    for k in info.keys:
        assert await deps.pool.fetchval(
            "SELECT count(*) FROM api_keys WHERE id = $1", k.key.split("_")[1]
        ) == 0
    assert await deps.pool.fetchval("SELECT count(*) FROM signin_links") == 0
    after = {k async for k in deps.redis.scan_iter(match=f"{deps.settings.redis_prefix}*")}
    assert after == mine_redis, "only the demo's Redis keys went"
    # What is not the demo's is as it was.
    assert await _counts(deps, "mine") == mine_rows
    assert (await authenticate(deps.pool, mine_key)).role == "operator"

    again = await demo.seed(deps)
    assert await deps.pool.fetchval("SELECT count(*) FROM reservations WHERE launch_id = 'demo'") == 0
    assert await deps.pool.fetchval(
        "SELECT count(*) FROM registrations WHERE launch_id = 'demo-next'"
    ) == 3, "the sign-up is gone, the seeded shoppers are back"
    assert len(again.shoppers) == 8


async def _counts(deps: Deps, launch_id: str) -> dict[str, int]:
    return {
        table: await deps.pool.fetchval(
            f"SELECT count(*) FROM {table} WHERE launch_id = $1", launch_id
        )
        for table in ("registrations", "events", "outbox", "units", "stores")
    }
