"""Shared by the self-service tests: the app on the fake clock and a launch where Ada
holds and confirms (`shop`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import msgspec
from litestar.testing import AsyncTestClient

from service.clock import FakeClock
from service.customers import links
from service.deps import Deps
from service.infra.settings import Settings
from service.queue.status import QueueWatch
from service.stock.confirm import confirm
from service.stock.hold_log import drain_events
from service.stock.holds import reserve
from service.stock.models import Reservation
from service.web.app import create_app
from tests.serve import selling_launch, tickets_for

L = "drop"
PROBLEM = "application/problem+json"
STORE = "Store One, Main St; Level 2"
PICKUP = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
Client = AsyncTestClient  # type: ignore[type-arg]


@contextlib.asynccontextmanager
async def app_on(settings: Settings, clock: FakeClock) -> AsyncIterator[Client]:
    """The app on the test's fake clock (no background jobs): each module's `app`."""
    application = create_app(msgspec.structs.replace(settings, background=False), clock=clock)
    async with AsyncTestClient(application) as c:
        yield c


class Shop(msgspec.Struct):
    regs: list[int]
    ticket: str
    reservation: Reservation
    hold_id: str


async def shop(deps: Deps, clock: FakeClock) -> Shop:
    """Ada (regs[0]) checks in, is admitted, confirms one unit at S1 and holds one at S2;
    Bob (regs[1]) confirms one at S1."""
    regs = await selling_launch(deps, L, stores=("S1", "S2"), units=2, registrations=3, limit=2)
    await deps.pool.execute("UPDATE stores SET name = $1 WHERE id = 'S1'", STORE)
    await deps.pool.execute("UPDATE skus SET name = 'Phone 17' WHERE id = 'K1'")
    await deps.pool.execute(
        "UPDATE launches SET pickup_starts_at = $2, pickup_ends_at = $3 WHERE id = $1",
        L,
        PICKUP,
        PICKUP + timedelta(hours=8),
    )
    [ticket] = await tickets_for(deps, L, regs[:1])
    watch = QueueWatch(deps)
    await watch.refresh(L)
    clock.advance(1)
    assert (await watch.refresh(L)).admitted == 1
    first = await reserve(deps, L, regs[0], "S1", "K1", rank=0)
    reservation = await confirm(deps, L, regs[0], first.hold_id, channel="app")
    second = await reserve(deps, L, regs[0], "S2", "K1")
    bobs = await reserve(deps, L, regs[1], "S1", "K1")
    await confirm(deps, L, regs[1], bobs.hold_id)
    await drain_events(deps, L)
    return Shop(regs=regs, ticket=ticket, reservation=reservation, hold_id=second.hold_id)


def link(deps: Deps, registration: int, launch_id: str = L) -> dict[str, str]:
    return {"token": links.manage_token(deps, launch_id, registration)}


def unfold(text: str) -> list[str]:
    """RFC 5545 §3.1: CRLF followed by one space or tab continues the line."""
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    return text.replace("\r\n ", "").replace("\r\n\t", "").split("\r\n")[:-1]


def unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\":
            nxt = value[i + 1]
            out.append("\n" if nxt in "nN" else nxt)
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)
