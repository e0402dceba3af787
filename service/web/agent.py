"""The agent console API: one customer's whole story across channels."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from service.admin.models import BoundedTimes
from service.customers import agent_actions, search
from service.customers.story import TimelineEntry
from service.pickup.windows import PickupWindow
from service.stock import reservations
from service.stock.models import Reservation
from service.web.auth import requires
from service.web.params import AppDeps, RegistrationId, ReservationId, SkuId, StoreId, Who
from service.web.ratelimit import SEARCH_SPACE, SEARCHES_PER_KEY, take

CHANNEL = "phone"
"""Agents work the phone: their actions show on the timeline on this channel."""


Reason = Annotated[str, msgspec.Meta(min_length=3, max_length=500)]
"""Why, in the customer's words or the agent's: it goes on the timeline."""


class AgentCancel(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason


class AgentMove(msgspec.Struct, forbid_unknown_fields=True):
    store_id: StoreId
    """The store to move to; it needs a free unit of the reservation's SKU."""
    reason: Reason


class AgentExtend(BoundedTimes, forbid_unknown_fields=True):
    ends_at: Annotated[datetime, msgspec.Meta(tz=True)]
    """The new end of this reservation's pickup window, later than the current one."""
    reason: Reason


class AgentReason(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason


class AgentNote(msgspec.Struct, forbid_unknown_fields=True):
    note: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class AgentBooking(msgspec.Struct, forbid_unknown_fields=True):
    registration_id: Annotated[int, msgspec.Meta(ge=1, le=2**62)]
    store_id: StoreId
    sku_id: SkuId
    reason: Reason


class Resent(msgspec.Struct, frozen=True):
    reservation_id: int
    outbox_id: int
    """The notification queued; the sender mails it within a sweep."""


class AgentController(Controller):
    path = "/api/agent"
    tags = ["agent console"]
    guards = [requires("agent")]

    @get(
        "/customers",
        operation_id="searchCustomers",
        summary="Find customers by e-mail, phone, name, reservation code or public id",
    )
    async def customers(
        self,
        deps: AppDeps,
        who: Who,
        q: Annotated[str, QueryParameter(min_length=1, max_length=320)],
    ) -> list[search.CustomerView]:
        await take(deps, SEARCH_SPACE, (SEARCHES_PER_KEY, who.actor))
        return await search.search(deps, q)

    @post(
        "/launches/{launch_id:str}/reservations/{reservation_id:int}/cancel",
        operation_id="agentCancel",
        status_code=200,
        summary="Cancel a customer's reservation on their behalf, with a reason",
    )
    async def cancel(
        self,
        deps: AppDeps,
        who: Who,
        launch_id: FromPath[str],
        reservation_id: ReservationId,
        data: JSONBody[AgentCancel],
    ) -> Reservation:
        return await reservations.cancel(
            deps,
            launch_id,
            reservation_id,
            registration_id=None,
            actor=who.actor,
            channel=CHANNEL,
            reason=data.reason,
        )

    @post(
        "/launches/{launch_id:str}/reservations",
        operation_id="agentBook",
        summary="Reserve a unit for a customer on the phone (no queue; the limit holds)",
    )
    async def book(
        self,
        deps: AppDeps,
        who: Who,
        launch_id: FromPath[str],
        data: JSONBody[AgentBooking],
    ) -> Reservation:
        return await agent_actions.book(
            deps,
            launch_id,
            data.registration_id,
            data.store_id,
            data.sku_id,
            actor=who.actor,
            channel=CHANNEL,
            reason=data.reason,
        )

    @post(
        "/launches/{launch_id:str}/reservations/{reservation_id:int}/move",
        operation_id="agentMove",
        status_code=200,
        summary="Move a reservation to another store that has a unit free",
    )
    async def move(
        self,
        deps: AppDeps,
        who: Who,
        launch_id: FromPath[str],
        reservation_id: ReservationId,
        data: JSONBody[AgentMove],
    ) -> Reservation:
        return await agent_actions.move(
            deps,
            launch_id,
            reservation_id,
            data.store_id,
            actor=who.actor,
            channel=CHANNEL,
            reason=data.reason,
        )

    @post(
        "/launches/{launch_id:str}/reservations/{reservation_id:int}/pickup-window",
        operation_id="agentExtendPickup",
        status_code=200,
        summary="Extend one reservation's pickup window",
    )
    async def extend(
        self,
        deps: AppDeps,
        who: Who,
        launch_id: FromPath[str],
        reservation_id: ReservationId,
        data: JSONBody[AgentExtend],
    ) -> PickupWindow:
        return await agent_actions.extend_pickup(
            deps,
            launch_id,
            reservation_id,
            data.ends_at,
            actor=who.actor,
            channel=CHANNEL,
            reason=data.reason,
        )

    @post(
        "/launches/{launch_id:str}/reservations/{reservation_id:int}/resend",
        operation_id="agentResendCode",
        status_code=202,
        summary="E-mail the reservation's code again",
    )
    async def resend(
        self,
        deps: AppDeps,
        who: Who,
        launch_id: FromPath[str],
        reservation_id: ReservationId,
        data: JSONBody[AgentReason],
    ) -> Resent:
        outbox_id = await agent_actions.resend_code(
            deps, launch_id, reservation_id, actor=who.actor, channel=CHANNEL, reason=data.reason
        )
        return Resent(reservation_id, outbox_id)

    @post(
        "/launches/{launch_id:str}/registrations/{registration_id:int}/notes",
        operation_id="agentNote",
        summary="Write a note on the customer's timeline",
    )
    async def note(
        self,
        deps: AppDeps,
        who: Who,
        launch_id: FromPath[str],
        registration_id: RegistrationId,
        data: JSONBody[AgentNote],
    ) -> TimelineEntry:
        return await agent_actions.add_note(
            deps, launch_id, registration_id, data.note, actor=who.actor, channel=CHANNEL
        )
