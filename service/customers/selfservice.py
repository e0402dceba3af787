"""The shopper's own view of one registration: registration, draw result, place in
the queue, live holds, reservations with code, store and pickup window, and the whole
history in plain words. Reached by the signed self-service link or a queue ticket;
the registration always comes from the credential, never from the request."""

from __future__ import annotations

from datetime import datetime

import msgspec

from service.admin import launches
from service.admin.launches import launch_zone
from service.admin.models import Launch
from service.auth.apikeys import key_labels
from service.customers import search
from service.customers.history import INTERNAL_KINDS, HistoryEntry, Names, describe
from service.deps import Deps
from service.queue.checkin import current_rank
from service.queue.status import QueueStatus, QueueWatch
from service.queue.tickets import TicketClaims
from service.stock.codes import format_code
from service.stock.models import Reservation
from service.store import stock as store

LIVE = ("confirmed", "collected")


class LaunchBrief(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    state: str
    fairness_mode: str


class RegistrationBrief(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    public_id: str
    email: str
    name: str | None
    verified: bool
    registered_at: datetime


class DrawResult(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    """`pending` (not drawn yet), `drawn`, `after_draw` (queued behind the drawn, in
    order of arrival), `no_draw` (first come, first served), `invited`, `waitlisted`."""
    place: int | None
    """1-based place the draw gave, when drawn."""
    message: str


class HoldView(msgspec.Struct, frozen=True, kw_only=True):
    hold_id: str
    store_id: str
    store: str
    sku_id: str
    sku: str
    state: str
    """`held`, or `confirming` while its reservation is being recorded."""
    expires_ms: int
    seconds_left: int


class PickupWindow(msgspec.Struct, frozen=True):
    starts_at: datetime | None
    ends_at: datetime | None


class ReservationView(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    code: str
    code_display: str
    status: str
    store_id: str
    store: str
    sku_id: str
    sku: str
    pickup: PickupWindow
    created_at: datetime
    collected_at: datetime | None
    cancelled_at: datetime | None
    cancellable: bool
    links: dict[str, str]
    """What can be done with it now, as paths taking the same credential: `calendar`
    (.ics, once the pickup window is set), and while it is confirmed `qr_png`,
    `qr_svg`, `cancel`, `resend`."""


class SelfView(msgspec.Struct, frozen=True, kw_only=True):
    launch: LaunchBrief
    registration: RegistrationBrief
    draw: DrawResult
    queue: QueueStatus | None
    """None until the registration checks in."""
    holds: list[HoldView]
    reservations: list[ReservationView]
    history: list[HistoryEntry]


async def names_of(deps: Deps, launch_id: str) -> tuple[dict[str, str], dict[str, str]]:
    stores = {i.id: i.name for i in await launches.list_items(deps, launch_id, "stores")}
    skus = {i.id: i.name for i in await launches.list_items(deps, launch_id, "skus")}
    return stores, skus


async def _draw(deps: Deps, launch: Launch, registration_id: int, rank: int | None) -> DrawResult:
    if launch.fairness_mode == "fifo":
        return DrawResult(status="no_draw", place=None, message="Places go in order of arrival.")
    if launch.fairness_mode == "lottery":
        status = await deps.pool.fetchval(
            "SELECT draw_status FROM registrations WHERE id = $1", registration_id
        )
        words = {
            "invited": "You were drawn: you are invited to the sale.",
            "waitlisted": "You were not drawn; you are on the waiting list.",
        }
        return DrawResult(
            status=status or "pending",
            place=None,
            message=words.get(status, "The draw has not been made yet."),
        )
    drawn = await deps.pool.fetchrow(
        "SELECT revealed_at, entrants FROM draws WHERE launch_id = $1", launch.id
    )
    if drawn is None or drawn["revealed_at"] is None:
        return DrawResult(
            status="pending",
            place=None,
            message="Everyone checked in is put in a random order when the sale starts;"
            " checking in early gives no advantage.",
        )
    if rank is not None and 0 <= rank < drawn["entrants"]:
        return DrawResult(
            status="drawn",
            place=rank + 1,
            message=f"The draw gave you place {rank + 1} of {drawn['entrants']}.",
        )
    return DrawResult(
        status="after_draw",
        place=None,
        message="You were not checked in when the order was drawn, so you queue behind"
        " everyone drawn, in order of arrival.",
    )


async def live_holds(
    deps: Deps, launch_id: str, registration_id: int, live_reservations: int
) -> list[tuple[str, str, str, int, str]]:
    """(hold id, store, sku, expires_ms, state) of the registration's live holds."""
    found = await store.holds_of(
        deps.scripts,
        deps.keys(launch_id),
        now_ms=deps.clock.now_ms(),
        registration_id=registration_id,
        live=live_reservations,
    )
    return [(h.hold_id, h.store_id, h.sku_id, h.expires_ms, h.state) for h in found]


def _links(base: str, status: str, pickup_set: bool) -> dict[str, str]:
    """What can be done with a reservation now: a live one's code (QR), cancel and
    re-send; the calendar file once the pickup window is set (a cancelled one's
    takes the event off the calendar)."""
    out = {"calendar": f"{base}/calendar.ics"} if pickup_set else {}
    if status == "confirmed":
        out |= {k: f"{base}/{path}" for k, path in _LIVE_LINKS.items()}
    return out


_LIVE_LINKS = {"qr_png": "qr.png", "qr_svg": "qr.svg", "cancel": "cancel", "resend": "resend"}


def _reservation(
    r: Reservation, launch: Launch, stores: dict[str, str], skus: dict[str, str]
) -> ReservationView:
    base = f"/api/launches/{launch.id}/manage/reservations/{r.id}"
    return ReservationView(
        id=r.id,
        code=r.code,
        code_display=format_code(r.code),
        status=r.status,
        store_id=r.store_id,
        store=stores.get(r.store_id, r.store_id),
        sku_id=r.sku_id,
        sku=skus.get(r.sku_id, r.sku_id),
        pickup=PickupWindow(launch.pickup_starts_at, launch.pickup_ends_at),
        created_at=r.created_at,
        collected_at=r.collected_at,
        cancelled_at=r.cancelled_at,
        cancellable=r.status == "confirmed",
        links=_links(base, r.status, launch.pickup_starts_at is not None),
    )


async def view(
    deps: Deps, launch_id: str, registration_id: int, watch: QueueWatch | None = None
) -> SelfView:
    """Everything about one registration, as its shopper may see it."""
    launch = await launches.get_launch(deps, launch_id)
    customer = await search.view_of(deps, launch_id, registration_id)
    stores, skus = await names_of(deps, launch_id)
    reg = customer.registration
    rank = await current_rank(deps, launch_id, registration_id)
    queue = None
    if rank is not None:
        watch = watch or QueueWatch(deps)
        queue = await watch.status(TicketClaims(launch_id, registration_id, rank, 0))
    live = sum(1 for r in customer.reservations if r.status in LIVE)
    now = deps.clock.now_ms()
    holds = [
        HoldView(
            hold_id=hold_id,
            store_id=store,
            store=stores.get(store, store),
            sku_id=sku,
            sku=skus.get(sku, sku),
            state=state,
            expires_ms=expires,
            seconds_left=max(0, (expires - now) // 1000),
        )
        for hold_id, store, sku, expires, state in await live_holds(
            deps, launch_id, registration_id, live
        )
    ]
    return SelfView(
        launch=LaunchBrief(
            id=launch.id, name=launch.name, state=launch.state, fairness_mode=launch.fairness_mode
        ),
        registration=RegistrationBrief(
            id=reg.id,
            public_id=reg.public_id,
            email=reg.email,
            name=reg.name,
            verified=reg.verified_at is not None,
            registered_at=reg.created_at,
        ),
        draw=await _draw(deps, launch, registration_id, rank),
        queue=queue,
        holds=holds,
        reservations=[_reservation(r, launch, stores, skus) for r in customer.reservations],
        history=await _history(deps, customer, stores, skus, registration_id),
    )


async def _history(
    deps: Deps,
    customer: search.CustomerView,
    stores: dict[str, str],
    skus: dict[str, str],
    registration_id: int,
) -> list[HistoryEntry]:
    names = Names(
        stores=stores,
        skus=skus,
        codes={r.id: format_code(r.code) for r in customer.reservations},
        labels=await key_labels(deps.pool, {e.actor for e in customer.timeline}),
        zone=await launch_zone(deps, customer.registration.launch_id),
    )
    return [
        describe(e, names, registration_id)
        for e in customer.timeline
        if e.kind not in INTERNAL_KINDS
    ]


async def history(
    deps: Deps,
    launch_id: str,
    registration_id: int,
    names: tuple[dict[str, str], dict[str, str]] | None = None,
) -> list[HistoryEntry]:
    """The registration's timeline in plain words, oldest first (as `view` has it).
    `names`: the launch's (stores, skus) by id, when the caller has them already."""
    customer = await search.view_of(deps, launch_id, registration_id)
    stores, skus = names or await names_of(deps, launch_id)
    return await _history(deps, customer, stores, skus, registration_id)
