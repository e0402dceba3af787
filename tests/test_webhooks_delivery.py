"""Webhooks delivered to a real HTTP receiver: every event type signed and verifiable
with `standardwebhooks`, retries until the receiver recovers (each event got through
once, by its webhook-id), order per reservation, several workers racing, a lease that
outlives a dead sender, an endpoint disabled after failing (and the dashboard saying
so), replay, a rotated secret's grace, and private addresses refused at send time."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import msgspec
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from service.admin import allocations, launches
from service.admin import dashboard as board
from service.admin.models import ItemCreate, LaunchCreate, Transition
from service.clock import FakeClock
from service.customers import agent_actions
from service.deps import Deps
from service.jobs import sweep_once
from service.pickup import desk
from service.pickup.windows import release_no_shows
from service.queue import signup
from service.queue.checkin import check_in
from service.queue.leave import leave
from service.queue.places import drain_places
from service.queue.registrations import import_registrations, list_registrations
from service.queue.status import QueueWatch
from service.stock import confirm, holds, reservations
from service.webhooks import delivery, endpoints
from service.webhooks.fanout import fan_out
from service.webhooks.models import EndpointCreate, EndpointUpdate, RotateSecret
from service.webhooks.payloads import EVENT_TYPES
from tests.serve import ACTOR, advance, clients, selling_launch, stocked_launch
from tests.webhook_receiver import Received, Receiver, receiving

L = "drop"


@pytest.fixture(autouse=True)
def loopback(deps: Deps) -> None:
    """The receiver is on loopback: allowed here, as FAIRDROP_WEBHOOK_ALLOW_PRIVATE=1 does.
    (No e-mail: the sweeper would try an SMTP server nobody runs.)"""
    deps.settings = msgspec.structs.replace(deps.settings, webhook_allow_private=True, notify=False)


async def register(deps: Deps, url: str, events: list[str] | None = None) -> tuple[str, str]:
    """(endpoint id, secret)."""
    made = await endpoints.create_endpoint(
        deps,
        L,
        EndpointCreate(url=url, events=events or ["*"]),
        **ACTOR,  # type: ignore[arg-type]
    )
    return made.id, made.secret


async def deliver(deps: Deps) -> int:
    await fan_out(deps)
    return await delivery.deliver_due(deps)


async def deliveries(deps: Deps) -> list[msgspec.Struct]:
    rows = await deps.pool.fetch("SELECT * FROM webhook_deliveries ORDER BY id")
    return [msgspec.defstruct("D", list(r.keys()))(*r.values()) for r in rows]


async def _pause(deps: Deps) -> None:
    await launches.transition(deps, L, Transition(action="pause"), **ACTOR)


async def test_every_event_type_arrives_signed_and_verifiable(deps: Deps, clock: FakeClock) -> None:
    await launches.create_launch(
        deps,
        LaunchCreate(id=L, name="Drop", fairness_mode="fifo", admit_rate=100_000, hold_seconds=60),
        **ACTOR,
    )
    with receiving() as receiver:
        _, secret = await register(deps, receiver.url)
        for store in ("S1", "S2"):
            await launches.add_item(deps, L, "stores", ItemCreate(id=store, name=store), **ACTOR)
        await launches.add_item(deps, L, "skus", ItemCreate(id="K1", name="Phone"), **ACTOR)
        await allocations.set_allocation(deps, L, "S1", "K1", 2, **ACTOR)
        await allocations.set_allocation(deps, L, "S2", "K1", 1, **ACTOR)
        rows = [(i + 1, {"email": f"fan{i}@example.com"}) for i in range(3)]
        await import_registrations(deps, L, rows, **ACTOR)  # type: ignore[arg-type]
        r1, r2, r3 = [r.id for r in await list_registrations(deps, L, limit=3)]
        await launches.transition(
            deps, L, Transition(action="advance", to="registration_open"), **ACTOR
        )
        await signup.sign_up(deps, L, signup.SignUp(email="late@example.com"), channel="web")
        newcomer = await deps.pool.fetchval(
            "SELECT id FROM registrations WHERE email_norm LIKE 'late%'"
        )
        link = signup.verification_link(deps, L, newcomer)
        await signup.verify(deps, L, parse_qs(urlparse(link).query)["token"][0], channel="web")
        await launches.transition(deps, L, Transition(action="advance", to="selling"), **ACTOR)
        for reg in (r1, r2, r3):  # the waiting room: checked in, then admitted
            await check_in(deps, L, reg)
        await check_in(deps, L, newcomer)  # checked in, then left before their turn
        await leave(deps, L, newcomer, channel="web")
        watch = QueueWatch(deps)
        await watch.refresh(L)
        clock.advance(1)
        assert (await watch.refresh(L)).admitted == 4  # the place given up is passed by

        async def confirmed(reg: int, store: str = "S1") -> int:
            hold = await holds.reserve(deps, L, reg, store, "K1")
            return (await confirm.confirm(deps, L, reg, hold.hold_id, channel="web", actor="t")).id

        a = await confirmed(r1)
        released = await holds.reserve(deps, L, r2, "S1", "K1")
        await holds.release(deps, L, r2, released.hold_id)
        await holds.reserve(deps, L, r3, "S1", "K1")
        clock.advance(61)
        await holds.expire(deps, L)
        d = await confirmed(r2)
        await reservations.cancel(deps, L, d, registration_id=None, actor="t", channel="phone")
        await agent_actions.move(deps, L, a, "S2", actor="t", channel="phone", reason="closer")
        code = await deps.pool.fetchval("SELECT code FROM reservations WHERE id = $1", a)
        await desk.collect(deps, L, "S2", code, actor="staff")
        await confirmed(r3)
        await confirmed(r2)  # the last unit: nothing available or held
        await sweep_once(deps)  # sold out; hold events and places drained; admissions noticed
        await deps.pool.execute(
            "UPDATE launches SET pickup_ends_at = $2 WHERE id = $1",
            L,
            datetime.fromtimestamp(clock.now_ms() / 1000, tz=UTC) - timedelta(seconds=1),
        )
        assert await release_no_shows(deps, L) == 2
        for _ in range(20):  # a bound, not a timing: each sweep delivers what is due
            await sweep_once(deps)
            if {r.verified(secret).__struct_config__.tag for r in receiver.delivered()} >= set(
                EVENT_TYPES
            ):
                break

        got = receiver.delivered()
        events = [r.verified(secret) for r in got]  # every signature verifies
        assert {e.__struct_config__.tag for e in events} == set(EVENT_TYPES)
        assert len({r.message_id for r in got}) == len(got), "each event once"
        assert receiver.requests == got, "nothing had to be retried"
        by_type = {e.__struct_config__.tag: e for e in events}
        moved = by_type["reservation.moved"].data
        assert (moved.from_store_id, moved.store_id, moved.reason) == ("S1", "S2", "closer")  # type: ignore[union-attr]
        assert by_type["registration.verified"].data.customer.email == "late@example.com"  # type: ignore[union-attr]
        assert by_type["launch.sold_out"].launch_id == L
        placed = [e for e in events if e.__struct_config__.tag == "queue.checked_in"]
        assert sorted(e.data.place for e in placed) == [1, 2, 3, 4]  # type: ignore[union-attr]
        left = by_type["queue.left"].data
        assert (left.place, left.stage, left.customer.email) == (4, "waiting", "late@example.com")  # type: ignore[union-attr]
        # A receiver holding another secret refuses every one of them.
        with pytest.raises(WebhookVerificationError):
            Webhook(endpoints.new_secret()).verify(got[0].body, got[0].headers)


async def test_a_check_in_before_the_draw_is_announced_without_a_place(deps: Deps) -> None:
    regs = await stocked_launch(deps, L, registrations=2, fairness_mode="prequeue-shuffle")
    with receiving() as receiver:
        _, secret = await register(deps, receiver.url, ["queue.checked_in"])
        await advance(deps, L, "checkin_open")
        for _ in range(2):  # checking in again is the same check-in
            assert (await check_in(deps, L, regs[0])).rank is None
        await drain_places(deps, L)
        await deliver(deps)
    (got,) = receiver.delivered()
    event = got.verified(secret)
    assert event.data.customer.registration_id == regs[0]  # type: ignore[union-attr]
    assert event.data.place is None  # type: ignore[union-attr]


async def test_a_receiver_that_fails_three_times_gets_the_event_once_it_recovers(
    deps: Deps, clock: FakeClock
) -> None:
    await selling_launch(deps, L, registrations=1)
    with receiving(500, 500, 500) as receiver:
        _, secret = await register(deps, receiver.url)
        await _pause(deps)
        waits = []
        for _ in range(3):
            assert await deliver(deps) == 0
            (d,) = await deliveries(deps)
            assert (d.status, d.last_status, d.last_error) == ("pending", 500, "HTTP 500: not now")  # type: ignore[attr-defined]
            waits.append((d.next_attempt_at - d.last_attempt_at).total_seconds())  # type: ignore[attr-defined]
            assert await deliver(deps) == 0, "not before its back-off is over"
            clock.advance(waits[-1])
        assert waits == [1, 2, 4], "exponential back-off"
        assert await deliver(deps) == 1
        clock.advance(3600)
        assert await deliver(deps) == 0
    (d,) = await deliveries(deps)
    assert (d.status, d.attempts, d.last_status, d.last_error) == ("delivered", 4, 200, None)  # type: ignore[attr-defined]
    assert [r.status for r in receiver.requests] == [500, 500, 500, 200]
    assert len({r.message_id for r in receiver.requests}) == 1, "the same webhook-id each time"
    assert len(receiver.delivered()) == 1
    for r in receiver.requests:
        r.verified(secret)
    assert await deps.pool.fetchval("SELECT failures FROM webhook_endpoints") == 0


async def test_later_events_of_a_reservation_wait_for_the_earlier_to_get_through(
    deps: Deps, clock: FakeClock
) -> None:
    r1, r2 = await selling_launch(deps, L, registrations=2, units=5)
    with receiving() as receiver:
        await register(deps, receiver.url, ["reservation.confirmed", "reservation.cancelled"])
        first = await confirm.confirm(
            deps,
            L,
            r1,
            (await holds.reserve(deps, L, r1, "S1", "K1")).hold_id,
            channel="web",
            actor="t",
        )
        await reservations.cancel(deps, L, first.id, registration_id=r1, actor="t", channel="web")
        other = await confirm.confirm(
            deps,
            L,
            r2,
            (await holds.reserve(deps, L, r2, "S1", "K1")).hold_id,
            channel="web",
            actor="t",
        )
        refused = set()

        def once(r: Received) -> int | None:  # the first attempt of the first reservation fails
            body = msgspec.json.decode(r.body)
            key = (body["type"], body["data"]["reservation_id"])
            if key == ("reservation.confirmed", first.id) and key not in refused:
                refused.add(key)
                return 503
            return None

        receiver.rule = once
        assert await deliver(deps) == 1, "the other reservation does not wait"
        assert [(r.type, r.status) for r in receiver.requests] == [
            ("reservation.confirmed", 503),
            ("reservation.confirmed", 200),
        ] or [(r.type, r.status) for r in receiver.requests] == [
            ("reservation.confirmed", 200),
            ("reservation.confirmed", 503),
        ]
        assert await deliver(deps) == 0, "the cancel waits while the confirm backs off"
        clock.advance(1)
        assert await deliver(deps) == 2
        mine = [
            r
            for r in receiver.requests
            if msgspec.json.decode(r.body)["data"]["reservation_id"] == first.id
        ]
        assert [(r.type, r.status) for r in mine] == [
            ("reservation.confirmed", 503),
            ("reservation.confirmed", 200),
            ("reservation.cancelled", 200),
        ]
        assert other.id != first.id


async def test_two_workers_racing_send_each_delivery_once_and_in_order(
    deps: Deps, clock: FakeClock
) -> None:
    regs = await selling_launch(deps, L, registrations=60, units=100)
    rng = random.Random(20)
    with receiving() as receiver:
        await register(
            deps, receiver.url, ["hold.placed", "hold.released", "registration.verified"]
        )
        for reg in regs:
            hold = await holds.reserve(deps, L, reg, "S1", "K1")
            await holds.release(deps, L, reg, hold.hold_id)
        await sweep_once(deps)  # drains the hold events; their deliveries are made
        receiver.rule = lambda r: 500 if rng.random() < 0.2 else None
        async with clients(deps, 2) as workers:
            for _ in range(40):
                await asyncio.gather(*(delivery.deliver_due(w, batch=7) for w in workers))
                clock.advance(3600)
                if len(receiver.delivered()) == 2 * len(regs):
                    break
    got = receiver.delivered()
    assert Counter(Counter(r.message_id for r in got).values()) == {1: 2 * len(regs)}
    assert {d.status for d in await deliveries(deps)} == {"delivered"}  # type: ignore[attr-defined]
    first_ok: dict[str, int] = {}
    for i, r in enumerate(receiver.requests):
        body = msgspec.json.decode(r.body)
        hold_id = body["data"]["hold_id"]
        if body["type"] == "hold.placed" and r.status == 200:
            first_ok.setdefault(hold_id, i)
        if body["type"] == "hold.released":
            assert hold_id in first_ok, "a release was sent before its hold got through"


async def test_a_sender_that_dies_mid_send_leaves_the_delivery_to_be_sent_again(
    deps: Deps, clock: FakeClock
) -> None:
    await selling_launch(deps, L, registrations=1)
    with receiving() as receiver:
        await register(deps, receiver.url)
        await _pause(deps)
        await fan_out(deps)
        assert len(await delivery._claim(deps, 10)) == 1  # claimed, then the process died
        assert await delivery.deliver_due(deps) == 0, "another process leaves it alone"
        clock.advance(deps.settings.webhook_timeout_seconds + 11)
        assert await delivery.deliver_due(deps) == 1
    assert len(receiver.requests) == 1


async def test_a_failing_endpoint_is_disabled_and_the_dashboard_says_so(
    deps: Deps, clock: FakeClock
) -> None:
    deps.settings = msgspec.structs.replace(deps.settings, webhook_disable_after=3)
    await selling_launch(deps, L, registrations=1)
    with receiving() as receiver, receiving() as healthy:
        receiver.default = 500
        endpoint_id, _ = await register(deps, receiver.url)
        await register(deps, healthy.url)
        await _pause(deps)
        await launches.transition(deps, L, Transition(action="resume"), **ACTOR)
        for wait in (1, 2, 4):  # the endpoint backs off as a whole between rounds
            await deliver(deps)
            clock.advance(wait)
        assert [r.status for r in receiver.requests] == [500] * 3, "one try a round"
        assert len(healthy.delivered()) == 2, "another endpoint does not wait for it"
        endpoint = await endpoints.get_endpoint(deps, L, endpoint_id)
        assert not endpoint.enabled and endpoint.disabled_reason is not None
        assert "in 3 tries in a row" in endpoint.disabled_reason
        assert "HTTP 500" in endpoint.disabled_reason
        clock.advance(3600)
        assert await deliver(deps) == 0 and len(receiver.requests) == 3, "nothing more is sent"
        shown = (await board.dashboard(deps, L, None)).webhooks_disabled
        assert [(w.id, w.url, w.reason, w.pending) for w in shown] == [
            (endpoint_id, receiver.url, endpoint.disabled_reason, 2)
        ]
        kinds = await deps.pool.fetch(
            "SELECT actor, data FROM events WHERE kind = 'webhook.disabled'"
        )
        assert [(k["actor"], k["data"]["endpoint"]) for k in kinds] == [("system", endpoint_id)]
        # Fixed and enabled again: what waited goes out, in order.
        receiver.default = 200
        await endpoints.update_endpoint(deps, L, endpoint_id, EndpointUpdate(enabled=True), **ACTOR)
        assert await deliver(deps) == 2
        assert (await board.dashboard(deps, L, None)).webhooks_disabled == []
    sent = [msgspec.json.decode(r.body)["data"]["action"] for r in receiver.delivered()]
    assert sent == ["pause", "resume"]


async def test_a_failed_delivery_is_replayed_with_the_same_webhook_id(
    deps: Deps, clock: FakeClock
) -> None:
    deps.settings = msgspec.structs.replace(deps.settings, webhook_max_attempts=2)
    await selling_launch(deps, L, registrations=1)
    with receiving(500, 500) as receiver:
        endpoint_id, secret = await register(deps, receiver.url, ["launch.state_changed"])
        await _pause(deps)
        await launches.transition(deps, L, Transition(action="resume"), **ACTOR)
        await deliver(deps)
        clock.advance(1)
        await deliver(deps)
        failed, waiting = await deliveries(deps)
        assert (failed.status, failed.attempts) == ("failed", 2)  # type: ignore[attr-defined]
        assert waiting.status == "pending" and waiting.attempts == 0, "it waits for the first"  # type: ignore[attr-defined]
        clock.advance(3600)
        assert await deliver(deps) == 0
        again = await endpoints.replay(deps, L, endpoint_id, failed.id, **ACTOR)  # type: ignore[attr-defined]
        assert (again.status, again.attempts) == ("pending", 0)
        assert await deliver(deps) == 2
    ids = [r.message_id for r in receiver.requests]
    assert ids == [ids[0], ids[0], ids[0], waiting.message_id]  # type: ignore[attr-defined]
    for r in receiver.requests:
        r.verified(secret)


async def test_a_rotated_secret_signs_beside_the_old_one_until_the_grace_ends(
    deps: Deps, clock: FakeClock
) -> None:
    await selling_launch(deps, L, registrations=1)
    with receiving() as receiver:
        endpoint_id, old = await register(deps, receiver.url, ["launch.state_changed"])
        rotated = await endpoints.rotate_secret(
            deps, L, endpoint_id, RotateSecret(grace_seconds=60), **ACTOR
        )
        assert rotated.secret != old and rotated.secret.startswith("whsec_")
        await _pause(deps)
        await deliver(deps)
        clock.advance(61)
        await launches.transition(deps, L, Transition(action="resume"), **ACTOR)
        await deliver(deps)
    during, after = receiver.delivered()
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    during.verified(old)
    during.verified(rotated.secret)
    after.verified(rotated.secret)
    with pytest.raises(WebhookVerificationError):
        after.verified(old)
    assert "whsec_" not in str(await deps.pool.fetch("SELECT data FROM events"))


async def test_an_address_that_turns_private_is_refused_at_send_time(
    deps: Deps, clock: FakeClock
) -> None:
    await selling_launch(deps, L, registrations=1)
    receiver = Receiver()
    receiver.start()
    try:
        await register(deps, receiver.url)
        deps.settings = msgspec.structs.replace(deps.settings, webhook_allow_private=False)
        await _pause(deps)
        assert await deliver(deps) == 0
    finally:
        receiver.stop()
    assert receiver.requests == []
    (d,) = await deliveries(deps)
    assert d.last_error.startswith("refused: 127.0.0.1 is a private or loopback address")  # type: ignore[attr-defined]
