"""The agent console API: one customer's whole story across channels."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import QueryParameter

from service.customers import search
from service.web.auth import require_key
from service.web.params import AnyRequest, AppDeps


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
