"""A registration's queue story, where the facts live: the place the draw gave it."""

from __future__ import annotations

from service.admin import allocations, launches
from service.admin.models import ItemCreate, LaunchCreate, Transition
from service.customers import search
from service.deps import Deps
from service.queue import checkin, places, registrations

A = {"actor": "test", "channel": "admin"}


async def test_the_drawn_place_is_on_the_timeline(deps: Deps) -> None:
    await launches.create_launch(deps, LaunchCreate(id="s1", name="S"), **A)
    await launches.add_item(deps, "s1", "stores", ItemCreate(id="S1", name="S"), **A)
    await launches.add_item(deps, "s1", "skus", ItemCreate(id="K1", name="K"), **A)
    await allocations.set_allocation(deps, "s1", "S1", "K1", 5, **A)
    await registrations.import_registrations(
        deps, "s1", [(i, {"email": f"p{i}@example.com"}) for i in range(3)], **A
    )
    regs = [r.id for r in await registrations.list_registrations(deps, "s1", limit=3)]
    for state in ("registration_closed", "checkin_open"):
        await launches.transition(deps, "s1", Transition(action="advance", to=state), **A)  # type: ignore[arg-type]
    for r in regs:
        await checkin.check_in(deps, "s1", r)
    await launches.transition(deps, "s1", Transition(action="advance", to="selling"), **A)
    places = set()
    for r in regs:
        view = await search.view_of(deps, "s1", r)
        [drawn] = [e for e in view.timeline if e.kind == "queue.drawn"]
        assert drawn.data["entrants"] == 3
        assert (
            drawn.what
            == f"Checked in before the sale; the draw gave place {drawn.data['place']} of 3"
        )
        places.add(drawn.data["place"])
    assert places == {1, 2, 3}


async def test_recorded_check_ins_and_turns_are_said_once(deps: Deps) -> None:
    """Check-ins and admissions are audit events; the story added its own entries for the
    same facts beside them, so the agent read each twice."""
    from service.notify.schedule import notify_admitted
    from service.queue.status import QueueWatch

    await launches.create_launch(
        deps,
        LaunchCreate(
            id="s2", name="S", fairness_mode="fifo", admit_rate=1000.0, time_zone="Asia/Tokyo"
        ),
        **A,
    )
    await launches.add_item(deps, "s2", "stores", ItemCreate(id="S1", name="S"), **A)
    await launches.add_item(deps, "s2", "skus", ItemCreate(id="K1", name="K"), **A)
    await allocations.set_allocation(deps, "s2", "S1", "K1", 5, **A)
    await registrations.import_registrations(deps, "s2", [(1, {"email": "p@example.com"})], **A)
    [reg] = [r.id for r in await registrations.list_registrations(deps, "s2", limit=1)]
    await launches.transition(deps, "s2", Transition(action="advance", to="selling"), **A)
    await checkin.check_in(deps, "s2", reg)
    await places.drain_places(deps, "s2")
    watch = QueueWatch(deps)
    await watch.refresh("s2")
    deps.clock.advance(1.0)  # type: ignore[attr-defined]
    assert (await watch.refresh("s2")).admitted == 1
    assert await notify_admitted(deps, "s2") == 1

    view = await search.view_of(deps, "s2", reg)

    kinds = [e.kind for e in view.timeline if e.kind.startswith("queue.")]
    assert kinds.count("queue.admitted") == 1, kinds
    assert kinds.count("queue.checked_in") + kinds.count("queue.placed") == 1, kinds
    [turn] = [e for e in view.timeline if e.kind == "queue.admitted"]
    assert turn.what.startswith("Turn came: admitted from the queue, to place a hold until ")
    assert "a later time" not in turn.what
    assert turn.what.endswith(" JST"), "in the launch's time zone"


async def test_a_confirmation_is_said_once_and_by_whom(deps: Deps) -> None:
    """The hold log's `confirmed` line and the reservation's own event are one fact;
    on the shopper's page, their own steps are theirs, not "fairdrop"'s."""
    from service.customers import selfservice
    from service.stock import confirm, holds
    from service.stock.hold_log import drain_events
    from tests.serve import selling_launch

    [reg] = await selling_launch(deps, "s3", registrations=1)
    hold = await holds.reserve(deps, "s3", reg, "S1", "K1")
    done = await confirm.confirm(deps, "s3", reg, hold.hold_id)
    await drain_events(deps, "s3")

    view = await search.view_of(deps, "s3", reg)
    said = [e.what for e in view.timeline if done.code[:5] in e.what]
    assert len(said) == 1 and said[0].startswith("Reservation "), said
    [held] = [h for h in await selfservice.history(deps, "s3", reg) if h.kind == "hold.held"]
    assert held.by == "you"
