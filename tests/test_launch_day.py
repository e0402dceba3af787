"""A whole launch on a fake clock, real Postgres, Redis and SMTP:
registration → e-mail verification → close → check-in → draw → admission at a set
rate → holds → confirms → sold out for everyone still waiting."""

from __future__ import annotations

import re

import msgspec

from service import errors
from service.admin import allocations, launches
from service.admin.models import ItemCreate, LaunchCreate, Transition
from service.clock import FakeClock
from service.deps import Deps
from service.notify import send_pending
from service.queue import checkin, draw, signup, tickets
from service.queue.signup import SignUp
from service.queue.status import QueueWatch
from service.stock import confirm, holds
from tests.mail import smtp_server

A = {"actor": "marketing", "channel": "admin"}
UNITS = 4


async def _advance(deps: Deps, to: str) -> None:
    await launches.transition(deps, "day", Transition(action="advance", to=to), **A)  # type: ignore[arg-type]


async def test_launch_day(deps: Deps, clock: FakeClock) -> None:
    deps.settings = msgspec.structs.replace(deps.settings, public_url="https://shop.example")
    await launches.create_launch(
        deps,
        LaunchCreate(
            id="day",
            name="Phone",
            admit_rate=1.0,
            active_cap=2,
            admission_window_seconds=60,
            hold_seconds=120,
        ),
        **A,
    )
    await launches.add_item(deps, "day", "stores", ItemCreate(id="S1", name="Store"), **A)
    await launches.add_item(deps, "day", "skus", ItemCreate(id="K1", name="Phone"), **A)
    await allocations.set_allocation(deps, "day", "S1", "K1", UNITS, **A)
    await _advance(deps, "registration_open")

    with smtp_server(deps) as inbox:
        for i in range(10):
            await signup.sign_up(deps, "day", SignUp(email=f"fan{i}@example.com"), channel="web")
        assert await send_pending(deps) == 10
        links = {
            str(m["To"]): re.search(
                r"token=([\w.\-]+)", m.get_body(("plain",)).get_content()
            ).group(1)  # type: ignore[union-attr]
            for m in inbox.messages
        }
        assert len(links) == 10
        # Eight follow their link; two never do and cannot take part.
        shoppers = {}
        for email in sorted(links)[:8]:
            verified = await signup.verify(deps, "day", links[email], channel="web")
            shoppers[email] = verified.shopper_token

        await _advance(deps, "registration_closed")
        commitment = await draw.commitment(deps, "day")
        assert commitment.roster_size == 8 and commitment.seed is None

        await _advance(deps, "checkin_open")
        registration_of = {
            email: deps.signer.verify(token, launch_id="day", now_ms=clock.now_ms()).registration_id
            for email, token in shoppers.items()
        }
        for registration in registration_of.values():
            assert (await checkin.check_in(deps, "day", registration)).rank is None  # pre-queue

        await _advance(deps, "selling")
        published = await draw.published(deps, "day")
        assert draw.check(published) == [] and len(published.order) == 8
        # Checking in again after the draw returns the drawn place, in a fresh ticket.
        drawn = [
            tickets.read(deps, (await checkin.check_in(deps, "day", r)).ticket, "day")
            for r in registration_of.values()
        ]
        by_rank = sorted(drawn, key=lambda c: c.rank)
        assert [c.rank for c in by_rank] == list(range(8))

        watch = QueueWatch(deps)
        bought: list[int] = []
        for _second in range(60):
            clock.advance(1.0)
            snap = await watch.refresh("day")
            assert snap.active <= 2, "never more active shoppers than the cap"
            for c in by_rank:
                state = (await watch.status(c)).state
                if state == "admitted" and c.rank not in bought:
                    try:
                        hold = await holds.reserve(
                            deps, "day", c.registration_id, "S1", "K1", rank=c.rank
                        )
                    except errors.SoldOut:
                        continue
                    await confirm.confirm(deps, "day", c.registration_id, hold.hold_id)
                    bought.append(c.rank)
            if snap.sold_out:
                break
        assert bought == list(range(UNITS)), "admitted and served in queue order"
        final = await watch.refresh("day")
        assert final.sold_out
        waiting = [await watch.status(c) for c in by_rank[UNITS:]]
        assert [w.state for w in waiting] == ["sold_out"] * (8 - UNITS), "everyone waiting hears it"
        assert all("come back" in w.message for w in waiting), "and what to do next"

        assert await send_pending(deps) == UNITS
        confirmations = inbox.messages[10:]
        assert len(confirmations) == UNITS
        assert all("reservation" in str(m["Subject"]).lower() for m in confirmations)
