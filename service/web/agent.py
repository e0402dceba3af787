"""The agent console API: one customer's whole story across channels."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter

from service.customers import search
from service.stock import reservations
from service.stock.models import Reservation
from service.web.auth import require_key
from service.web.params import AnyRequest, AppDeps


class AgentCancel(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=3, max_length=500)]
    """Why, in the customer's words or the agent's: it goes on the timeline."""


class AgentController(Controller):
    path = "/api/agent"
    tags = ["agent console"]

    @get(
        "/customers",
        operation_id="searchCustomers",
        summary="Find customers by e-mail, phone, name, reservation code or public id",
    )
    async def customers(
        self,
        request: AnyRequest,
        deps: AppDeps,
        q: Annotated[str, QueryParameter(min_length=1, max_length=320)],
    ) -> list[search.CustomerView]:
        await require_key(request, deps, "agent")
        return await search.search(deps, q)

    @post(
        "/launches/{launch_id:str}/reservations/{reservation_id:int}/cancel",
        operation_id="agentCancel",
        status_code=200,
        summary="Cancel a customer's reservation on their behalf, with a reason",
    )
    async def cancel(
        self,
        request: AnyRequest,
        deps: AppDeps,
        launch_id: FromPath[str],
        reservation_id: Annotated[int, PathParameter(ge=1, le=2**62)],
        data: JSONBody[AgentCancel],
    ) -> Reservation:
        who = await require_key(request, deps, "agent")
        return await reservations.cancel(
            deps,
            launch_id,
            reservation_id,
            registration_id=None,
            actor=who.actor,
            channel="phone",
            reason=data.reason,
        )
