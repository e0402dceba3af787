"""The reservation page says what the reservation is now: a live code with its QR and
what to do at the desk; a cancelled one plainly cancelled (no QR, nothing to show at
the desk, a calendar file that takes the pickup off); and another may be taken only
while the turn really goes on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from service.clock import FakeClock
from service.customers import actions
from service.deps import Deps
from service.infra.settings import Settings
from service.queue.status import QueueWatch
from service.stock.confirm import confirm
from service.stock.holds import reserve
from service.web.app import create_app
from tests.serve import selling_launch, tickets_for

L = "drop"
Client = AsyncTestClient  # type: ignore[type-arg]


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[Client]:
    application = create_app(msgspec.structs.replace(settings, background=False), clock=clock)
    async with AsyncTestClient(application) as c:
        yield c


async def _bought(deps: Deps, clock: FakeClock, limit: int) -> tuple[int, int, str]:
    """A shopper admitted from the queue confirms one unit; (registration, reservation,
    the page's cookie header)."""
    [reg] = await selling_launch(deps, L, units=3, registrations=1, limit=limit)
    await deps.pool.execute(
        "UPDATE launches SET pickup_starts_at = $2 WHERE id = $1",
        L,
        datetime(2027, 2, 1, 9, tzinfo=UTC),
    )
    [ticket] = await tickets_for(deps, L, [reg])
    watch = QueueWatch(deps)
    await watch.refresh(L)
    clock.advance(1)
    assert (await watch.refresh(L)).admitted == 1
    hold = await reserve(deps, L, reg, "S1", "K1", rank=0)
    done = await confirm(deps, L, reg, hold.hold_id)
    return reg, done.id, f"fd_ticket={ticket}"


async def test_a_cancelled_reservation_looks_cancelled(
    deps: Deps, clock: FakeClock, app: Client
) -> None:
    reg, rid, cookie = await _bought(deps, clock, limit=1)
    path = f"/launches/{L}/reservation"

    live = (await app.get(path, headers={"cookie": cookie})).text
    assert "Show this code at the store" in live and "<svg" in live
    assert "Add pickup to calendar" in live
    assert "go back to the waiting room" not in live, "one a customer, and it is taken"

    await actions.cancel_reservation(deps, L, reg, rid, channel="web")
    page = await app.get(path, headers={"cookie": cookie})

    assert page.status_code == 200
    text = page.text
    assert "This reservation is cancelled" in text
    assert "no longer collects" in text and "nothing to pick up" in text
    assert "<svg" not in text, "no QR code to scan"
    for live_words in ("Show this code", "collects the unit", "Add pickup to calendar"):
        assert live_words not in text, live_words
    assert "go back to the waiting room" not in text, "the turn ended with the confirmation"
    assert f"/manage/reservations/{rid}/calendar.ics" in text, "a file to take it off"


async def test_another_is_offered_only_while_the_turn_goes_on(
    deps: Deps, clock: FakeClock, app: Client
) -> None:
    reg, rid, cookie = await _bought(deps, clock, limit=2)
    path = f"/launches/{L}/reservation"

    assert "go back to the waiting room" in (await app.get(path, headers={"cookie": cookie})).text
    await actions.cancel_reservation(deps, L, reg, rid, channel="web")
    after_cancel = (await app.get(path, headers={"cookie": cookie})).text
    assert "go back to the waiting room" in after_cancel, "the turn goes on: two a customer"

    clock.advance(timedelta(hours=1).total_seconds())  # the time to choose the next is up
    over = (await app.get(path, headers={"cookie": cookie})).text
    assert "go back to the waiting room" not in over
