"""Shopper endpoints: hold, release, confirm, my reservations, cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post
from litestar.params import FromPath, JSONBody, PathParameter

from service import subjects
from service.admin import launches
from service.stock import holds, reservations
from service.stock.codes import format_code
from service.stock.confirm_batch import ConfirmBatcher
from service.stock.counts import redis_counts
from service.stock.models import Hold, Reservation
from service.stock.rebuild import ensure_loaded
from service.web.auth import channel_of, require_customer, require_ticket
from service.web.params import AnyRequest, AppDeps, SkuId, StoreId


class HoldCreate(msgspec.Struct, forbid_unknown_fields=True):
    store_id: StoreId
    sku_id: SkuId


class ReservationOut(msgspec.Struct):
    reservation: Reservation
    code_display: str


class Availability(msgspec.Struct):
    store_id: FromPath[str]
    sku_id: FromPath[str]
    available: int


class PublicLaunch(msgspec.Struct, kw_only=True):
    id: str
    name: str
    description: str
    """What marketing says about the launch (plain text; may be empty)."""
    state: str
    paused: bool
    hold_seconds: int
    per_customer_limit: int
    fairness_mode: str
    """How the queue is ordered: `prequeue-shuffle`, `lottery` or `fifo`."""
    time_zone: str
    """Where the launch happens (IANA): show its times there."""
    registration_closes_at: datetime | None
    checkin_opens_at: datetime | None
    sale_starts_at: datetime | None
    pickup_starts_at: datetime | None
    pickup_ends_at: datetime | None
    stores: list[dict[str, str]]
    skus: list[dict[str, str]]
    availability: list[Availability]


class MyReservations(msgspec.Struct):
    registration_id: int
    reservations: list[ReservationOut]


def reservation_out(r: Reservation) -> ReservationOut:
    return ReservationOut(reservation=r, code_display=format_code(r.code))


class ShopperController(Controller):
    path = "/api/launches/{launch_id:str}"
    tags = ["shopper"]

    @get("/", operation_id="getLaunch", summary="Public facts of a launch, with live availability")
    async def launch(self, deps: AppDeps, launch_id: FromPath[str]) -> PublicLaunch:
        launch = await launches.get_launch(deps, launch_id)
        await ensure_loaded(deps, launch_id)
        stores = await launches.list_items(deps, launch_id, "stores")
        skus = await launches.list_items(deps, launch_id, "skus")
        counts = await redis_counts(deps, launch_id)
        return PublicLaunch(
            id=launch.id,
            name=launch.name,
            description=launch.description,
            state=launch.state,
            paused=launch.paused,
            hold_seconds=launch.hold_seconds,
            per_customer_limit=launch.per_customer_limit,
            fairness_mode=launch.fairness_mode,
            time_zone=launch.time_zone,
            registration_closes_at=launch.registration_closes_at,
            checkin_opens_at=launch.checkin_opens_at,
            sale_starts_at=launch.sale_starts_at,
            pickup_starts_at=launch.pickup_starts_at,
            pickup_ends_at=launch.pickup_ends_at,
            stores=[{"id": s.id, "name": s.name} for s in stores],
            skus=[{"id": s.id, "name": s.name} for s in skus],
            availability=[Availability(c.store_id, c.sku_id, c.available) for c in counts],
        )

    @post("/holds", operation_id="createHold", summary="Hold one unit (one Redis round trip)")
    async def hold(
        self,
        request: AnyRequest,
        deps: AppDeps,
        data: JSONBody[HoldCreate],
    ) -> Hold:
        # The launch id is read off the route's match, not declared as a parameter: the
        # path's converter has already made it a string, and Litestar's extraction of a
        # declared one cost a hold ~8k instructions, a tenth of what it adds to a bare
        # EVALSHA (`tests/bench/run.py reserve-ir`). OpenAPI still documents it.
        launch_id: str = request.scope["path_params"]["launch_id"]
        ticket = require_ticket(request, deps, launch_id)
        return await holds.reserve(
            deps, launch_id, ticket.registration_id, data.store_id, data.sku_id, rank=ticket.rank
        )

    @delete("/holds/{hold_id:str}", operation_id="releaseHold", summary="Give a held unit back")
    async def release(
        self,
        request: AnyRequest,
        deps: AppDeps,
        launch_id: FromPath[str],
        hold_id: FromPath[str],
    ) -> None:
        registration_id = require_customer(request, deps, launch_id)
        await holds.release(deps, launch_id, registration_id, hold_id)

    @post(
        "/holds/{hold_id:str}/confirm",
        operation_id="confirmHold",
        summary="Confirm a hold into a reservation",
    )
    async def confirm(
        self, request: AnyRequest, launch_id: FromPath[str], hold_id: FromPath[str]
    ) -> ReservationOut:
        # A hot route: the batcher carries the deps, so none is injected (each injected
        # dependency costs a resolution per call).
        confirmer: ConfirmBatcher = request.app.state.confirmer  # one per worker
        registration_id = require_customer(request, confirmer.deps, launch_id)
        reservation = await confirmer.confirm(
            launch_id, registration_id, hold_id, channel=channel_of(request)
        )
        return reservation_out(reservation)

    @get("/me", operation_id="myReservations", summary="The caller's reservations in this launch")
    async def me(
        self, request: AnyRequest, deps: AppDeps, launch_id: FromPath[str]
    ) -> MyReservations:
        registration_id = require_customer(request, deps, launch_id)
        found = await reservations.for_registration(deps, launch_id, registration_id)
        return MyReservations(registration_id, [reservation_out(r) for r in found])

    @post(
        "/reservations/{reservation_id:int}/cancel",
        operation_id="cancelReservation",
        summary="Cancel one of the caller's reservations",
        status_code=200,
    )
    async def cancel(
        self,
        request: AnyRequest,
        deps: AppDeps,
        launch_id: FromPath[str],
        reservation_id: Annotated[int, PathParameter(ge=1, le=2**62)],
    ) -> ReservationOut:
        registration_id = require_customer(request, deps, launch_id)
        cancelled = await reservations.cancel(
            deps,
            launch_id,
            reservation_id,
            registration_id=registration_id,
            actor=subjects.registration(registration_id),
            channel=channel_of(request),
        )
        return reservation_out(cancelled)
