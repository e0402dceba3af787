"""Launch administration: lifecycle, allocations, registrations import, events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service import errors
from service.admin import allocations, launches
from service.admin.models import ItemCreate, LaunchCreate, LaunchUpdate, Transition
from service.clock import FakeClock
from service.deps import Deps
from service.queue import registrations
from service.stock import holds

A = {"actor": "test", "channel": "admin"}


async def _launch(deps: Deps, launch_id: str = "l1", **kw: object) -> None:
    await launches.create_launch(deps, LaunchCreate(id=launch_id, name="Launch", **kw), **A)  # type: ignore[arg-type]
    await launches.add_item(deps, launch_id, "stores", ItemCreate(id="S1", name="Store"), **A)
    await launches.add_item(deps, launch_id, "skus", ItemCreate(id="K1", name="Phone"), **A)


async def _kinds(deps: Deps) -> list[str]:
    return [r["kind"] for r in await deps.pool.fetch("SELECT kind FROM events ORDER BY id")]


async def test_lifecycle_moves_forward_only_and_every_move_is_an_event(deps: Deps) -> None:
    await _launch(deps)
    with pytest.raises(errors.Conflict):
        await _launch(deps)
    moved = await launches.transition(deps, "l1", Transition(action="advance", to="selling"), **A)
    assert moved.state == "selling"
    with pytest.raises(errors.InvalidTransition):
        await launches.transition(
            deps, "l1", Transition(action="advance", to="registration_open"), **A
        )
    assert (await launches.transition(deps, "l1", Transition(action="pause"), **A)).paused
    with pytest.raises(errors.InvalidTransition):
        await launches.transition(deps, "l1", Transition(action="pause"), **A)
    assert not (await launches.transition(deps, "l1", Transition(action="resume"), **A)).paused
    assert (
        await launches.transition(deps, "l1", Transition(action="close"), **A)
    ).state == "closed"
    kinds = await _kinds(deps)
    assert kinds[:3] == ["launch.created", "store.created", "sku.created"]
    launch_kinds = [k for k in kinds[3:] if k.startswith("launch.")]
    # An advance to selling steps through each state before it, an event each.
    assert launch_kinds == [*["launch.advance"] * 4, "launch.pause", "launch.resume", "launch.close"]
    # Going straight to selling still draws (an empty pre-queue) and says so.
    assert {"draw.committed", "draw.revealed"} <= set(kinds)


async def test_pause_stops_reserving_at_once(deps: Deps) -> None:
    await _launch(deps)
    await allocations.set_allocation(deps, "l1", "S1", "K1", 3, **A)
    await registrations.import_registrations(deps, "l1", [(1, {"email": "a@example.com"})], **A)
    await launches.transition(deps, "l1", Transition(action="advance", to="selling"), **A)
    await holds.reserve(deps, "l1", 1, "S1", "K1")
    await launches.transition(deps, "l1", Transition(action="pause"), **A)
    with pytest.raises(errors.LaunchNotSelling):
        await holds.reserve(deps, "l1", 1, "S1", "K1")
    await launches.transition(deps, "l1", Transition(action="resume"), **A)
    with pytest.raises(errors.LimitReached):  # limit 1, one hold already
        await holds.reserve(deps, "l1", 1, "S1", "K1")


async def test_update_changes_only_given_fields(deps: Deps) -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    await launches.create_launch(deps, LaunchCreate(id="l2", name="N", sale_starts_at=start), **A)
    updated = await launches.update_launch(deps, "l2", LaunchUpdate(hold_seconds=60), **A)
    assert updated.hold_seconds == 60 and updated.sale_starts_at == start and updated.name == "N"
    cleared = await launches.update_launch(deps, "l2", LaunchUpdate(sale_starts_at=None), **A)
    assert cleared.sale_starts_at is None
    with pytest.raises(errors.NotFound):
        await launches.update_launch(deps, "nope", LaunchUpdate(name="x"), **A)


async def test_timings_move_the_launch(deps: Deps, clock: FakeClock) -> None:
    now = datetime.fromtimestamp(clock.now_ms() / 1000, tz=UTC)
    await launches.create_launch(
        deps,
        LaunchCreate(
            id="l3",
            name="N",
            registration_opens_at=now + timedelta(minutes=1),
            sale_starts_at=now + timedelta(minutes=10),
        ),
        **A,
    )
    assert await launches.advance_due(deps) == []
    clock.advance(61)
    assert [launch.state for launch in await launches.advance_due(deps)] == ["registration_open"]
    clock.advance(600)
    assert [launch.state for launch in await launches.advance_due(deps)] == ["selling"]
    assert await launches.advance_due(deps) == []


async def test_allocation_raises_at_once_and_never_lowers_below_held(deps: Deps) -> None:
    await _launch(deps, per_customer_limit=4)
    await registrations.import_registrations(deps, "l1", [(1, {"email": "a@example.com"})], **A)
    await launches.transition(deps, "l1", Transition(action="advance", to="selling"), **A)
    count = await allocations.set_allocation(deps, "l1", "S1", "K1", 5, **A)
    assert (count.allocated, count.available) == (5, 5)
    for _ in range(3):
        await holds.reserve(deps, "l1", 1, "S1", "K1")
    with pytest.raises(errors.AllocationTooLow):
        await allocations.set_allocation(deps, "l1", "S1", "K1", 2, **A)
    count = await allocations.set_allocation(deps, "l1", "S1", "K1", 3, **A)
    assert (count.allocated, count.available, count.held) == (3, 0, 3)
    count = await allocations.set_allocation(deps, "l1", "S1", "K1", 10, **A)
    assert (count.allocated, count.available, count.held) == (10, 7, 3)
    units = await deps.pool.fetchval("SELECT count(*) FROM units")
    assert units == 10
    with pytest.raises(errors.NotFound):
        await allocations.set_allocation(deps, "l1", "S9", "K1", 1, **A)
    kinds = await _kinds(deps)
    assert kinds.count("allocation.raised") == 2 and kinds.count("allocation.lowered") == 1


async def test_import_normalises_deduplicates_and_reports_lines(deps: Deps) -> None:
    await _launch(deps)
    csv_text = "Email,Name,Phone\nada@example.com,Ada,\n ADA+x@Example.com ,Ada again,\nnot-an-email,X,\n,Empty,\nbob@example.com,Bob,+44 20 7946 0958\n"
    rows = registrations.parse_csv(csv_text)
    report = await registrations.import_registrations(deps, "l1", rows, **A)
    assert report.created == 2 and report.duplicates == 1 and report.duplicate_lines == [3]
    assert [p.line for p in report.invalid] == [4, 5]
    again = await registrations.import_registrations(
        deps,
        "l1",
        [(1, {"email": "Bob@example.com"}), (2, {"email": "cy@example.com", "age": 3})],
        **A,
    )
    assert again.created == 0 and again.duplicates == 1 and again.invalid[0].line == 2
    assert again.duplicate_lines == [1], "registered by the first import"
    regs = await registrations.list_registrations(deps, "l1")
    assert [r.email for r in regs] == ["ada@example.com", "bob@example.com"]
    assert all(r.verified_at is not None for r in regs)
    token = await registrations.issue_token(deps, "l1", regs[0].id)
    claims = deps.signer.verify(token.token, launch_id="l1", now_ms=deps.clock.now_ms())
    assert claims.registration_id == regs[0].id
    assert (await _kinds(deps)).count("registration.imported") == 2
    with pytest.raises(errors.InvalidField):
        registrations.parse_csv("name\nAda\n")
