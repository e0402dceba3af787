"""Every action on every route, in every state of its object, answers a 2xx or a
documented 4xx problem: never a 500, never an undocumented type.

Each cell of the matrix gets a launch of its own, so what one action does (a cancel, a
collect) never changes another cell's object. The object is put in its state through
the service functions the app itself uses; the action goes through the real app over
HTTP (the fast lane in front, as `fairdrop serve` runs it), on the test's fake clock.

`EXPECTED` is the table docs/api.md describes: one row per action, one
column per state, each cell the status and problem type the action answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from itertools import count

import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from service.auth.apikeys import create_key
from service.auth.tokens import ShopperClaims
from service.clock import FakeClock
from service.customers import links
from service.deps import Deps
from service.errors import ALL_ERRORS
from service.infra.settings import Settings
from service.pickup import desk
from service.pickup.windows import now_of, release_no_shows
from service.stock import confirm, holds, reservations
from service.stock.hold_log import drain_events
from service.web.app import create_app
from service.web.fastpath import FastLane
from tests.serve import selling_launch

HOLD_SECONDS = 60
PROBLEM = "application/problem+json"
Client = AsyncTestClient  # type: ignore[type-arg]


@dataclass
class Target:
    """One object in one state, in a launch of its own."""

    launch: str
    registration: int
    hold_id: str
    reservation_id: int = 0
    code: str = ""


@dataclass
class World:
    deps: Deps
    clock: FakeClock
    client: Client
    staff: dict[str, str]
    agent: dict[str, str]
    launches: count[int]

    def shopper(self, t: Target) -> dict[str, str]:
        token = self.deps.signer.sign(
            ShopperClaims(t.launch, t.registration, self.clock.now_ms() + 86_400_000)
        )
        return {"Authorization": f"Bearer {token}"}

    def link(self, t: Target) -> dict[str, str]:
        return {"token": links.manage_token(self.deps, t.launch, t.registration)}


@pytest.fixture
async def world(settings: Settings, deps: Deps, clock: FakeClock) -> AsyncIterator[World]:
    app = FastLane(create_app(msgspec.structs.replace(settings, background=False), clock))
    async with AsyncTestClient(app, raise_server_exceptions=False) as client:  # type: ignore[arg-type]
        yield World(
            deps=deps,
            clock=clock,
            client=client,
            staff={
                "Authorization": f"Bearer {await create_key(deps.pool, 'staff', store_id='S1')}"
            },
            agent={"Authorization": f"Bearer {await create_key(deps.pool, 'agent')}"},
            launches=count(1),
        )


# ---- states --------------------------------------------------------------------------


async def _launch(w: World) -> tuple[str, list[int]]:
    """A launch selling at S1 and S2, its pickup window open for the next hour, with
    two registrations."""
    launch = f"m{next(w.launches)}"
    regs = await selling_launch(
        w.deps,
        launch,
        stores=("S1", "S2"),
        units=2,
        registrations=2,
        limit=2,
        hold_seconds=HOLD_SECONDS,
    )
    now = now_of(w.deps)
    await w.deps.pool.execute(
        "UPDATE launches SET pickup_starts_at = $2, pickup_ends_at = $3 WHERE id = $1",
        launch,
        now - timedelta(hours=1),
        now + timedelta(hours=1),
    )
    return launch, regs


async def _held(w: World) -> Target:
    """One unit held at S1."""
    launch, regs = await _launch(w)
    hold = await holds.reserve(w.deps, launch, regs[0], "S1", "K1")
    return Target(launch, regs[0], hold.hold_id)


async def _anothers_hold(w: World) -> Target:
    """Someone else's hold, asked about by the first registration."""
    launch, regs = await _launch(w)
    hold = await holds.reserve(w.deps, launch, regs[1], "S1", "K1")
    return Target(launch, regs[0], hold.hold_id)


async def _anothers_reservation(w: World) -> Target:
    """Someone else's reservation, at another store than the desk's."""
    launch, regs = await _launch(w)
    hold = await holds.reserve(w.deps, launch, regs[1], "S2", "K1")
    r = await confirm.confirm(w.deps, launch, regs[1], hold.hold_id)
    return Target(launch, regs[0], hold.hold_id, r.id, r.code)


async def _confirmed(w: World) -> Target:
    t = await _held(w)
    r = await confirm.confirm(w.deps, t.launch, t.registration, t.hold_id)
    t.reservation_id, t.code = r.id, r.code
    return t


async def _confirming(w: World) -> Target:
    """`confirm_begin` ran and its process died: the hold waits for the reconciler."""
    t = await _held(w)
    await w.deps.scripts.run(
        "confirm_begin",
        w.deps.keys(t.launch),
        w.deps.clock.now_ms(),
        confirm.deadline_ms(w.deps),
        t.hold_id,
        t.registration,
    )
    return t


async def _expired(w: World) -> Target:
    """Past its time; nothing has touched the launch since, so Redis still has it."""
    t = await _held(w)
    w.clock.advance(HOLD_SECONDS + 1)
    return t


async def _expired_swept(w: World) -> Target:
    """Past its time and released by a script (the record is gone from Redis); the event
    still waits in Redis's log."""
    t = await _expired(w)
    assert await holds.expire(w.deps, t.launch) == 1
    return t


async def _expired_drained(w: World) -> Target:
    """As the sweeper leaves it: released, its event copied into Postgres, the log empty."""
    t = await _expired_swept(w)
    await drain_events(w.deps, t.launch)
    return t


async def _released(w: World) -> Target:
    t = await _held(w)
    await holds.release(w.deps, t.launch, t.registration, t.hold_id)
    return t


async def _released_drained(w: World) -> Target:
    t = await _released(w)
    await drain_events(w.deps, t.launch)
    return t


async def _cancelled(w: World) -> Target:
    t = await _confirmed(w)
    await reservations.cancel(
        w.deps, t.launch, t.reservation_id, registration_id=None, actor="t", channel="web"
    )
    return t


async def _collected(w: World) -> Target:
    t = await _confirmed(w)
    await desk.collect(w.deps, t.launch, "S1", t.code, actor="key:desk")
    return t


async def _no_show(w: World) -> Target:
    t = await _confirmed(w)
    w.clock.advance(2 * 3600)
    assert await release_no_shows(w.deps, t.launch) == 1
    return t


State = Callable[[World], Awaitable[Target]]
HOLD_STATES: dict[str, State] = {
    "held": _held,
    "confirming": _confirming,
    "confirmed": _confirmed,
    "expired": _expired,
    "expired, swept": _expired_swept,
    "expired, drained": _expired_drained,
    "released": _released,
    "released, drained": _released_drained,
    "another's": _anothers_hold,
}
RESERVATION_STATES: dict[str, State] = {
    "confirmed": _confirmed,
    "cancelled": _cancelled,
    "collected": _collected,
    "no-show": _no_show,
    "another's": _anothers_reservation,
}


# ---- actions -------------------------------------------------------------------------

Action = Callable[[World, Target], Awaitable[httpx.Response]]


def _api(t: Target) -> str:
    return f"/api/launches/{t.launch}"


def _manage(t: Target) -> str:
    return f"/api/launches/{t.launch}/manage"


def _agent(t: Target) -> str:
    return f"/api/agent/launches/{t.launch}/reservations/{t.reservation_id}"


def _desk(t: Target) -> str:
    return f"/api/staff/launches/{t.launch}/reservations/{t.code}"


WHY = {"reason": "customer called"}
HOLD_ACTIONS: dict[str, Action] = {
    "shopper confirm": lambda w, t: w.client.post(
        f"{_api(t)}/holds/{t.hold_id}/confirm", headers=w.shopper(t)
    ),
    "shopper release": lambda w, t: w.client.delete(
        f"{_api(t)}/holds/{t.hold_id}", headers=w.shopper(t)
    ),
    "shopper me": lambda w, t: w.client.get(f"{_api(t)}/me", headers=w.shopper(t)),
    "manage view": lambda w, t: w.client.get(_manage(t), params=w.link(t)),
    "manage cancel hold": lambda w, t: w.client.post(
        f"{_manage(t)}/holds/{t.hold_id}/cancel", params=w.link(t)
    ),
}
RESERVATION_ACTIONS: dict[str, Action] = {
    "desk look up": lambda w, t: w.client.get(_desk(t), headers=w.staff),
    "desk collect": lambda w, t: w.client.post(f"{_desk(t)}/collect", headers=w.staff),
    "agent cancel": lambda w, t: w.client.post(f"{_agent(t)}/cancel", headers=w.agent, json=WHY),
    "agent move": lambda w, t: w.client.post(
        f"{_agent(t)}/move", headers=w.agent, json={"store_id": "S2", **WHY}
    ),
    "agent extend pickup": lambda w, t: w.client.post(
        f"{_agent(t)}/pickup-window",
        headers=w.agent,
        json={"ends_at": (now_of(w.deps) + timedelta(days=2)).isoformat(), **WHY},
    ),
    "agent resend": lambda w, t: w.client.post(f"{_agent(t)}/resend", headers=w.agent, json=WHY),
    "agent note": lambda w, t: w.client.post(
        f"/api/agent/launches/{t.launch}/registrations/{t.registration}/notes",
        headers=w.agent,
        json={"note": "called about pickup"},
    ),
    "manage view": lambda w, t: w.client.get(_manage(t), params=w.link(t)),
    "manage cancel": lambda w, t: w.client.post(
        f"{_manage(t)}/reservations/{t.reservation_id}/cancel", params=w.link(t)
    ),
    "manage resend": lambda w, t: w.client.post(
        f"{_manage(t)}/reservations/{t.reservation_id}/resend", params=w.link(t)
    ),
    "manage calendar": lambda w, t: w.client.get(
        f"{_manage(t)}/reservations/{t.reservation_id}/calendar.ics", params=w.link(t)
    ),
    "manage qr.png": lambda w, t: w.client.get(
        f"{_manage(t)}/reservations/{t.reservation_id}/qr.png", params=w.link(t)
    ),
    "manage qr.svg": lambda w, t: w.client.get(
        f"{_manage(t)}/reservations/{t.reservation_id}/qr.svg", params=w.link(t)
    ),
    "shopper cancel": lambda w, t: w.client.post(
        f"{_api(t)}/reservations/{t.reservation_id}/cancel", headers=w.shopper(t)
    ),
    "shopper me": lambda w, t: w.client.get(f"{_api(t)}/me", headers=w.shopper(t)),
}


# ---- the table -----------------------------------------------------------------------

GONE = "410 hold-expired"  # expired or released, however long ago
BUSY = "409 conflict"  # the object's state does not allow it (the detail says which)
NO_HOLD = "404 hold-not-found"
NO = "404 not-found"
WONT = "409 not-collectable"

HOLD_EXPECTED: dict[str, tuple[str, ...]] = {
    # held, confirming, confirmed, expired, expired swept, expired drained, released,
    # released drained, another's
    "shopper confirm": ("201", "201", "201", GONE, GONE, GONE, GONE, GONE, NO_HOLD),
    "shopper release": ("204", BUSY, BUSY, GONE, GONE, GONE, GONE, GONE, NO_HOLD),
    "shopper me": ("200",) * 9,
    "manage view": ("200",) * 9,
    "manage cancel hold": ("204", BUSY, BUSY, GONE, GONE, GONE, GONE, GONE, NO_HOLD),
}
RESERVATION_EXPECTED: dict[str, tuple[str, ...]] = {
    # confirmed, cancelled, collected, no-show, another's (at S2, not the desk's store)
    "desk look up": ("200", "200", "200", "200", NO),
    "desk collect": ("200", WONT, "409 already-collected", WONT, NO),
    "agent cancel": ("200", BUSY, BUSY, BUSY, "200"),
    "agent move": ("200", BUSY, BUSY, BUSY, BUSY),  # to S2: another's is there already
    "agent extend pickup": ("200", BUSY, BUSY, BUSY, "200"),
    "agent resend": ("202", BUSY, BUSY, BUSY, "202"),
    "agent note": ("201",) * 5,
    "manage view": ("200",) * 5,
    "manage cancel": ("200", BUSY, BUSY, BUSY, NO),
    "manage resend": ("202", BUSY, BUSY, BUSY, NO),
    "manage calendar": ("200", "200", "200", "200", NO),  # a cancelled one says so
    "manage qr.png": ("200", BUSY, BUSY, BUSY, NO),
    "manage qr.svg": ("200", BUSY, BUSY, BUSY, NO),
    "shopper cancel": ("200", BUSY, BUSY, BUSY, NO),
    "shopper me": ("200",) * 5,
}


def _answer(r: httpx.Response) -> str:
    """A cell as the table writes it: `200`, or `409 not-collectable` for a problem."""
    if r.status_code < 400 or r.status_code >= 500:
        return str(r.status_code)
    assert r.headers["content-type"] == PROBLEM, (r.status_code, r.text)
    body = r.json()
    assert body["status"] == r.status_code and body["title"] and body["detail"], body
    return f"{r.status_code} {body['type'].rsplit('/', 1)[1]}"


async def _check(
    w: World,
    states: dict[str, State],
    actions: dict[str, Action],
    expected: dict[str, tuple[str, ...]],
) -> None:
    """Run every cell; report every cell that differs from the table at once."""
    assert list(expected) == list(actions)
    wrong = []
    for action, act in actions.items():
        for state, want in zip(states, expected[action], strict=True):
            got = _answer(await act(w, await states[state](w)))
            if got != want:
                wrong.append(f"{action} / {state}: {got}, the table says {want}")
    assert not wrong, "\n".join(wrong)


async def test_every_hold_action_in_every_hold_state(world: World) -> None:
    await _check(world, HOLD_STATES, HOLD_ACTIONS, HOLD_EXPECTED)


async def test_every_reservation_action_in_every_reservation_state(world: World) -> None:
    await _check(world, RESERVATION_STATES, RESERVATION_ACTIONS, RESERVATION_EXPECTED)


def test_the_table_uses_documented_problem_types_only() -> None:
    """Every refusal in the table is a type the errors module defines (and docs/api.md lists)."""
    known = {e.type for e in ALL_ERRORS}
    cells = {c for row in (*HOLD_EXPECTED.values(), *RESERVATION_EXPECTED.values()) for c in row}
    assert {c.split(" ")[1] for c in cells if " " in c} <= known
