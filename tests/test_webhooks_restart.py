"""A restart of fairdrop (and of the receiver) while a delivery backs off loses nothing:
the queue is in Postgres, and the real app's background loop picks it up again."""

from __future__ import annotations

import asyncio
import inspect
from collections import Counter
from collections.abc import Awaitable, Callable

import msgspec

from service.admin import launches
from service.admin.models import Transition
from service.deps import Deps
from service.webhooks import endpoints
from service.webhooks.models import EndpointCreate
from tests.serve import ACTOR, selling_launch, serving
from tests.webhook_receiver import Receiver

L = "drop"
BACKGROUND = {
    "FAIRDROP_BACKGROUND": "1",
    "FAIRDROP_SWEEP_INTERVAL": "0.2",
    "FAIRDROP_NOTIFY": "0",
    "FAIRDROP_WEBHOOK_ALLOW_PRIVATE": "1",
    "FAIRDROP_WEBHOOK_TIMEOUT": "2",
}


async def until(done: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    """Retry `done` (plain or async) until it holds; fail after a minute."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60  # a bound on a loaded machine, not a timing claim
    while True:
        result = done()
        if await result if inspect.isawaitable(result) else result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"never: {what}")
        await asyncio.sleep(0.05)  # a retry interval, not a wait for something to happen


async def test_a_restart_mid_back_off_loses_nothing(deps: Deps) -> None:
    deps.settings = msgspec.structs.replace(deps.settings, webhook_allow_private=True)
    await selling_launch(deps, L, registrations=1)
    receiver = Receiver()
    receiver.default = 500  # down for now
    receiver.start()
    made = await endpoints.create_endpoint(
        deps, L, EndpointCreate(url=receiver.url, events=["launch.state_changed"]), **ACTOR
    )
    await launches.transition(deps, L, Transition(action="pause"), **ACTOR)
    with serving(deps.settings, env=BACKGROUND):
        await until(lambda: len(receiver.requests) >= 2, "two failed tries")
    # fairdrop is stopped while the delivery waits for its next try; the receiver too.
    receiver.stop()
    row = await deps.pool.fetchrow("SELECT status, attempts FROM webhook_deliveries")
    assert row is not None and row["status"] == "pending"
    # A try sent as fairdrop stopped may not be recorded: it is sent again (at least once).
    assert 1 <= row["attempts"] <= len(receiver.requests)
    tried = len(receiver.requests)
    await launches.transition(deps, L, Transition(action="resume"), **ACTOR)  # while it is down

    receiver.default = 200
    receiver.start()
    done = "SELECT count(*) = 2 FROM webhook_deliveries WHERE status = 'delivered'"
    with serving(deps.settings, env=BACKGROUND):
        await until(lambda: deps.pool.fetchval(done), "both deliveries recorded")
    receiver.stop()

    seen = Counter(r.message_id for r in receiver.delivered())
    assert list(seen.values()) == [1, 1], "each event got through once"
    actions = [r.verified(made.secret).data.action for r in receiver.delivered()]  # type: ignore[union-attr]
    assert actions == ["pause", "resume"], "in order"
    tries = Counter(r.message_id for r in receiver.requests)
    assert tries[receiver.delivered()[0].message_id] == tried + 1, "nothing sent twice after"
