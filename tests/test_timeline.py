"""A launch cannot be set up into nonsense: its times follow the lifecycle (a create or
a patch that breaks the order is a 422 naming the fields, a patch checked against the
stored times with it applied), and the clock moves a launch one state at a time, so
no phase with work to do is skipped (the commitment, the draw, the sale)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from service import errors, jobs
from service.admin import launches, timeline
from service.admin.models import LaunchCreate, LaunchUpdate, Transition
from service.clock import FakeClock
from service.deps import Deps
from service.infra import scheduler
from service.queue import draw
from service.queue.status import QueueWatch

A = {"actor": "test", "channel": "admin"}
T0 = datetime(2030, 6, 1, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
S = timedelta(seconds=1)
IN_ORDER = {
    "registration_opens_at": T0,
    "registration_closes_at": T0 + 24 * H,
    "checkin_opens_at": T0 + 25 * H,
    "sale_starts_at": T0 + 26 * H,
    "sale_ends_at": T0 + 30 * H,
    "pickup_starts_at": T0 + 48 * H,
    "pickup_ends_at": T0 + 56 * H,
    "archive_at": T0 + 100 * H,
}
Client = AsyncTestClient  # type: ignore[type-arg]


def test_times_in_lifecycle_order_pass() -> None:
    assert timeline.order_problems(IN_ORDER) == []
    assert timeline.order_problems({}) == []
    # The same moment is fine where one step follows straight on from the other.
    same = {"registration_closes_at": T0, "checkin_opens_at": T0, "sale_starts_at": T0}
    assert timeline.order_problems(same) == []
    assert timeline.order_problems({"sale_ends_at": T0, "pickup_starts_at": T0}) == []


@pytest.mark.parametrize(
    ("times", "fields"),
    [
        (
            {"registration_opens_at": T0, "registration_closes_at": T0},
            {"registration_opens_at", "registration_closes_at"},
        ),
        (
            {"registration_closes_at": T0, "checkin_opens_at": T0 - H},
            {"registration_closes_at", "checkin_opens_at"},
        ),
        (
            {"checkin_opens_at": T0, "sale_starts_at": T0 - H},
            {"checkin_opens_at", "sale_starts_at"},
        ),
        ({"sale_starts_at": T0, "pickup_starts_at": T0}, {"sale_starts_at", "pickup_starts_at"}),
        (
            {"sale_starts_at": T0, "pickup_starts_at": T0 - H},
            {"sale_starts_at", "pickup_starts_at"},
        ),
        ({"pickup_starts_at": T0, "pickup_ends_at": T0}, {"pickup_starts_at", "pickup_ends_at"}),
        ({"sale_starts_at": T0, "sale_ends_at": T0}, {"sale_starts_at", "sale_ends_at"}),
        ({"sale_ends_at": T0, "pickup_starts_at": T0 - H}, {"sale_ends_at", "pickup_starts_at"}),
        ({"pickup_ends_at": T0, "archive_at": T0 - H}, {"pickup_ends_at", "archive_at"}),
        # Across unset times: opens < closes ≤ check-in, so opens < check-in.
        (
            {"registration_opens_at": T0, "checkin_opens_at": T0},
            {"registration_opens_at", "checkin_opens_at"},
        ),
        (
            {"registration_opens_at": T0, "pickup_ends_at": T0 - H},
            {"registration_opens_at", "pickup_ends_at"},
        ),
    ],
)
def test_times_out_of_order_are_named(times: dict[str, datetime], fields: set[str]) -> None:
    [(earlier, later, words)] = timeline.order_problems(times)
    assert {earlier, later} == fields and "must be" in words


async def test_create_out_of_order_is_a_422_naming_the_fields(
    client: Client, admin_key: str
) -> None:
    headers = {"Authorization": f"Bearer {admin_key}"}
    body: dict[str, Any] = {"id": "l1", "name": "Launch"} | {
        k: v.isoformat() for k, v in IN_ORDER.items()
    }
    body["pickup_starts_at"] = (T0 + 25 * H).isoformat()  # before the sale starts

    r = await client.post("/api/admin/launches", json=body, headers=headers)

    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["type"].endswith("/invalid-field")
    assert set(problem["fields"]) == {"sale_ends_at", "pickup_starts_at"}
    assert {e["field"] for e in problem["errors"]} == {"sale_ends_at", "pickup_starts_at"}
    assert "pickup starts must be" in problem["detail"]
    assert (await client.get("/api/admin/launches/l1", headers=headers)).status_code == 404
    body["pickup_starts_at"] = IN_ORDER["pickup_starts_at"].isoformat()
    assert (await client.post("/api/admin/launches", json=body, headers=headers)).status_code == 201


async def test_a_patch_is_checked_against_the_stored_times(
    deps: Deps, client: Client, admin_key: str
) -> None:
    headers = {"Authorization": f"Bearer {admin_key}"}
    await launches.create_launch(
        deps, LaunchCreate(id="l1", name="L", sale_starts_at=T0, pickup_starts_at=T0 + H), **A
    )

    # Alone the patch is fine; with the stored pickup time it is not.
    r = await client.patch(
        "/api/admin/launches/l1", json={"sale_starts_at": (T0 + 2 * H).isoformat()}, headers=headers
    )
    assert r.status_code == 422, r.text
    assert r.json()["type"].endswith("/invalid-field")
    assert set(r.json()["fields"]) == {"sale_starts_at", "pickup_starts_at"}
    assert (await launches.get_launch(deps, "l1")).sale_starts_at == T0, "nothing changed"

    # Moving both together, or clearing one, keeps the order.
    both = {
        "sale_starts_at": (T0 + 2 * H).isoformat(),
        "pickup_starts_at": (T0 + 3 * H).isoformat(),
    }
    assert (
        await client.patch("/api/admin/launches/l1", json=both, headers=headers)
    ).status_code == 200
    cleared = {"pickup_starts_at": None, "sale_starts_at": (T0 + 9 * H).isoformat()}
    assert (
        await client.patch("/api/admin/launches/l1", json=cleared, headers=headers)
    ).status_code == 200
    with pytest.raises(errors.InvalidField, match="out of order"):
        await launches.update_launch(deps, "l1", LaunchUpdate(checkin_opens_at=T0 + 10 * H), **A)


async def _steps(deps: Deps, launch_id: str) -> list[tuple[str, str]]:
    rows = await deps.pool.fetch(
        "SELECT kind, data FROM events WHERE launch_id = $1 AND (kind = 'launch.advance'"
        " OR kind LIKE 'draw.%') ORDER BY id",
        launch_id,
    )
    return [
        (r["data"]["from"], r["data"]["to"]) if r["kind"] == "launch.advance" else (r["kind"], "")
        for r in rows
    ]


async def test_the_clock_steps_through_every_phase_with_work(deps: Deps, clock: FakeClock) -> None:
    """A launch set up with pickup already started went from registration_open to
    pickup at once, skipping the commitment, the draw and the sale."""
    now = datetime.fromtimestamp(clock.now_ms() / 1000, tz=UTC)
    await launches.create_launch(
        deps,
        LaunchCreate(
            id="late",
            name="L",
            registration_opens_at=now - 4 * H,
            registration_closes_at=now - 3 * H,
            sale_starts_at=now - 2 * H,
            pickup_starts_at=now - H,
        ),
        **A,
    )

    [moved] = await launches.advance_due(deps)

    assert moved.state == "pickup"
    assert await _steps(deps, "late") == [
        ("draft", "registration_open"),
        ("registration_open", "registration_closed"),
        ("draw.committed", ""),
        ("registration_closed", "checkin_open"),
        ("checkin_open", "selling"),
        ("draw.revealed", ""),
        ("selling", "closed"),
        ("closed", "pickup"),
    ]
    assert (await draw.commitment(deps, "late")).seed is not None, "the draw was made"
    assert await launches.advance_due(deps) == []


async def test_the_clock_never_skips_the_sale(deps: Deps, clock: FakeClock) -> None:
    """With no sale time, pickup's time coming does not end a sale that never started:
    it starts by hand, and then the clock goes on."""
    now = datetime.fromtimestamp(clock.now_ms() / 1000, tz=UTC)
    await launches.create_launch(
        deps,
        LaunchCreate(
            id="nosale",
            name="L",
            fairness_mode="fifo",
            registration_opens_at=now - 2 * H,
            pickup_starts_at=now - H,
        ),
        **A,
    )

    assert [m.state for m in await launches.advance_due(deps)] == ["registration_open"]
    assert await launches.advance_due(deps) == []
    await launches.transition(deps, "nosale", Transition(action="advance", to="selling"), **A)
    assert [m.state for m in await launches.advance_due(deps)] == ["pickup"]
    assert (await _steps(deps, "nosale"))[-2:] == [("selling", "closed"), ("closed", "pickup")]


async def test_an_advance_by_hand_steps_through_every_phase(deps: Deps) -> None:
    """An operator's advance from registration_open straight to selling jumped past
    registration_closed, so the draw had no commitment; it steps through each state."""
    await launches.create_launch(deps, LaunchCreate(id="hand", name="L"), **A)
    await launches.transition(
        deps, "hand", Transition(action="advance", to="registration_open"), **A
    )

    moved = await launches.transition(deps, "hand", Transition(action="advance", to="selling"), **A)

    assert moved.state == "selling"
    assert await _steps(deps, "hand") == [
        ("draft", "registration_open"),
        ("registration_open", "registration_closed"),
        ("draw.committed", ""),
        ("registration_closed", "checkin_open"),
        ("checkin_open", "selling"),
        ("draw.revealed", ""),
    ]
    assert (await draw.commitment(deps, "hand")).seed is not None, "the draw was made"


async def test_the_sale_starts_at_its_time_while_a_sweep_is_busy(
    deps: Deps, clock: FakeClock
) -> None:
    """Launches move at their timings, not at a sweep's tick after everything else it
    does (under a launch's load a sweep takes seconds, so the sale and admission would
    start that much late). Here another process holds every sweep job, and the sale
    starts anyway."""
    deps.settings = msgspec.structs.replace(deps.settings, sweep_interval_seconds=3600.0)
    now = datetime.fromtimestamp(clock.now_ms() / 1000, tz=UTC)
    await launches.create_launch(
        deps,
        LaunchCreate(id="ontime", name="L", checkin_opens_at=now - H, sale_starts_at=now + 30 * S),
        **A,
    )
    await launches.transition(deps, "ontime", Transition(action="advance", to="checkin_open"), **A)
    held = [job.name for job in jobs.exclusive_jobs(deps)]
    async with deps.pool.acquire() as busy:
        for name in held:  # another process is busy with every exclusive job
            assert await busy.fetchval(scheduler._LOCK, name)
        async with jobs.running(deps, QueueWatch(deps), sweep=True):
            clock.advance(31)
            for _ in range(200):  # a bound, not a timing: it moves within about a second
                if (await draw.commitment(deps, "ontime")).seed is not None:
                    break
                await asyncio.sleep(0.05)
        for name in held:
            await busy.execute(scheduler._UNLOCK, name)

    assert (await launches.get_launch(deps, "ontime")).state == "selling"
    assert (await draw.commitment(deps, "ontime")).seed is not None, "the draw was made"
