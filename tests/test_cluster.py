"""On a real Redis Cluster: every key of a launch shares one hash slot, so each script
runs on the launch's shard, launches spread over the shards, and one batch of confirms
over launches on different shards settles each on its own shard."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio.cluster import RedisCluster

from service import errors
from service.clock import FakeClock
from service.deps import Deps
from service.infra import db
from service.infra.redis import redis_for
from service.infra.settings import Settings
from service.queue import checkin, tickets
from service.queue.status import QueueWatch
from service.stock import holds
from service.stock.confirm_batch import ConfirmBatcher
from service.stock.counts import redis_counts
from service.web.app import create_app
from service.web.fastpath import FastLane
from tests.redis_cluster import local_cluster
from tests.serve import (
    advance,
    assert_consistent,
    selling_launch,
    stocked_launch,
    until_admitted,
)


@pytest.fixture(scope="session")
def cluster_ports() -> Iterator[list[int]]:
    with local_cluster(3) as ports:
        yield ports


@pytest.fixture
async def cdeps(
    settings: Settings, clock: FakeClock, cluster_ports: list[int]
) -> AsyncIterator[Deps]:
    on_cluster = msgspec.structs.replace(
        settings, redis_url=f"redis://127.0.0.1:{cluster_ports[0]}", redis_cluster=True
    )
    pool = await db.create_pool(on_cluster, min_size=1, max_size=20)
    redis = redis_for(on_cluster)
    assert isinstance(redis, RedisCluster)
    await redis.initialize()  # learn the slots (a first command would too)
    try:
        yield Deps(settings=on_cluster, pool=pool, redis=redis, clock=clock)
    finally:
        await redis.aclose()
        await pool.close()


def _shard_of(deps: Deps, launch_id: str) -> str:
    assert isinstance(deps.redis, RedisCluster)
    return str(deps.redis.get_node_from_key(deps.keys(launch_id).meta).name)


def _launches_on_every_shard(deps: Deps, shards: int) -> list[str]:
    """Launch ids whose hash tags land on `shards` different shards, one each."""
    found: dict[str, str] = {}
    for n in range(1000):
        found.setdefault(_shard_of(deps, f"drop-{n}"), f"drop-{n}")
        if len(found) == shards:
            return list(found.values())
    raise AssertionError("the launch ids never covered every shard")


async def test_launches_on_different_shards_sell_without_oversell(
    cdeps: Deps, cluster_ports: list[int]
) -> None:
    deps = cdeps
    ids = _launches_on_every_shard(deps, len(cluster_ports))
    regs = {lid: await selling_launch(deps, lid, units=10, registrations=25) for lid in ids}

    # A real race on every shard at once: 25 shoppers, two attempts each, 10 units.
    async def attempt(lid: str, reg: int) -> holds.Hold | None:
        try:
            return await holds.reserve(deps, lid, reg, "S1", "K1")
        except (errors.SoldOut, errors.LimitReached):
            return None

    tries = [attempt(lid, r) for lid in ids for r in regs[lid] for _ in range(2)]
    won = [h for h in await asyncio.gather(*tries) if h is not None]
    for lid in ids:
        mine = [h for h in won if h.launch_id == lid]
        assert len(mine) == 10, "exactly the units there are"
        assert len({h.registration_id for h in mine}) == 10, "nobody over the limit of one"

    # One batch confirms holds of all three launches, a script call on each shard.
    batcher = ConfirmBatcher(deps)
    done = await asyncio.gather(
        *(batcher.confirm(h.launch_id, h.registration_id, h.hold_id) for h in won)
    )
    assert len({(r.launch_id, r.code) for r in done}) == 30
    for lid in ids:
        assert (await assert_consistent(deps, lid))["S1:K1"] == (10, 0, 0, 10)

    # One shard loses its data and its scripts: only its launch is rebuilt, from Postgres.
    lost = ids[1]
    assert isinstance(deps.redis, RedisCluster)
    node = deps.redis.get_node_from_key(deps.keys(lost).meta)
    await deps.redis.execute_command("FLUSHALL", target_nodes=node)
    await deps.redis.execute_command("SCRIPT", "FLUSH", target_nodes=node)
    unserved = set(regs[lost]) - {h.registration_id for h in won}
    with pytest.raises(errors.SoldOut):
        await holds.reserve(deps, lost, min(unserved), "S1", "K1")
    [count] = await redis_counts(deps, lost)
    assert (count.allocated, count.available, count.confirmed) == (10, 0, 10)
    for lid in ids:
        await assert_consistent(deps, lid)


async def test_the_waiting_room_draws_and_admits_on_a_cluster(
    cdeps: Deps, clock: FakeClock
) -> None:
    deps = cdeps
    regs = await stocked_launch(deps, "wr", units=4, registrations=6, admit_rate=2.0)
    await advance(deps, "wr", "registration_closed", "checkin_open")
    early = [await checkin.check_in(deps, "wr", r) for r in regs]
    assert {c.rank for c in early} == {None}, "the pre-queue: ranks come from the draw"
    await advance(deps, "wr", "selling")
    ranked = [await checkin.check_in(deps, "wr", r) for r in regs]
    assert sorted(c.rank for c in ranked if c.rank is not None) == list(range(6))

    watch = QueueWatch(deps)
    await watch.load_active()
    await watch.refresh("wr")
    clock.advance(1.0)
    snap = await watch.refresh("wr")
    assert (snap.phase, snap.admitted) == ("drawn", 2), "two a second, in queue order"
    first = tickets.read(deps, min(ranked, key=lambda c: c.rank or 0).ticket, "wr")
    behind = tickets.read(deps, max(ranked, key=lambda c: c.rank or 0).ticket, "wr")
    hold = await holds.reserve(deps, "wr", first.registration_id, "S1", "K1", rank=first.rank)
    assert hold.unit_no >= 0
    with pytest.raises(errors.NotAdmitted):
        await holds.reserve(deps, "wr", behind.registration_id, "S1", "K1", rank=behind.rank)


async def test_the_app_serves_a_launch_from_the_cluster(
    cdeps: Deps, clock: FakeClock
) -> None:
    (reg,) = await selling_launch(cdeps, "web", units=2, registrations=1)
    ticket = (await checkin.check_in(cdeps, "web", reg)).ticket
    app = FastLane(create_app(cdeps.settings, clock))
    async with AsyncTestClient(app) as client:  # type: ignore[arg-type]
        # As an orchestrator probes: again until ready. The first probe also teaches the
        # client the cluster's slots, and on a loaded machine that can pass its 2 s.
        for _ in range(10):
            ready = await client.get("/readyz")
            if ready.status_code == 200:
                break
            await asyncio.sleep(0.5)
        assert ready.status_code == 200 and ready.json()["checks"]["redis"] == "ok", ready.text
        clock.advance(1.0)
        await until_admitted(cdeps, "web", 1)  # the app's admission loop, on the cluster
        bearer = {"Authorization": f"Bearer {ticket}"}
        status = await client.get("/api/launches/web/queue/status", headers=bearer)
        assert status.status_code == 200, status.text
        hold = await client.post(
            "/api/launches/web/holds", json={"store_id": "S1", "sku_id": "K1"}, headers=bearer
        )
        assert hold.status_code == 201, hold.text
        done = await client.post(
            f"/api/launches/web/holds/{hold.json()['hold_id']}/confirm", headers=bearer
        )
        assert done.status_code == 201, done.text
    assert (await assert_consistent(cdeps, "web"))["S1:K1"] == (2, 1, 0, 1)
