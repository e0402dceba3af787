"""The pickup desk over HTTP: API keys with role `staff`, scoped to one store."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.params import FromPath, QueryParameter

from service.errors import BadRequest
from service.pickup import desk
from service.web.auth import require_key
from service.web.params import AnyRequest, AppDeps

StoreQuery = Annotated[str | None, QueryParameter(pattern=r"^[A-Za-z0-9_-]{1,40}$")]


async def _store(request: AnyRequest, deps: AppDeps, store: str | None) -> tuple[str, str]:
    """(store, actor): a staff key's own store; an admin names one with `?store=`."""
    who = await require_key(request, deps, "staff")
    if who.store_id is not None:
        return who.store_id, who.actor
    if store is None:
        raise BadRequest("Name the store with ?store=… (a staff key knows its own).")
    return store, who.actor


class StaffController(Controller):
    path = "/api/staff/launches/{launch_id:str}"
    tags = ["pickup desk"]

    @get(
        "/reservations/{code:str}",
        operation_id="pickupLookup",
        summary="Look a code up at this store (typed or scanned; forgiving)",
    )
    async def lookup(
        self,
        request: AnyRequest,
        deps: AppDeps,
        launch_id: FromPath[str],
        code: FromPath[str],
        store: StoreQuery = None,
    ) -> desk.PickupCard:
        store_id, _ = await _store(request, deps, store)
        return await desk.lookup(deps, launch_id, store_id, code)

    @post(
        "/reservations/{code:str}/collect",
        operation_id="pickupCollect",
        status_code=200,
        summary="Mark collected, once; a second desk is told when and by whom",
    )
    async def collect(
        self,
        request: AnyRequest,
        deps: AppDeps,
        launch_id: FromPath[str],
        code: FromPath[str],
        store: StoreQuery = None,
    ) -> desk.PickupCard:
        store_id, actor = await _store(request, deps, store)
        return await desk.collect(deps, launch_id, store_id, code, actor=actor)

    @get("/pickups", operation_id="pickupList", summary="This store's pickups, with counts")
    async def pickups(
        self,
        request: AnyRequest,
        deps: AppDeps,
        launch_id: FromPath[str],
        store: StoreQuery = None,
    ) -> desk.PickupList:
        store_id, _ = await _store(request, deps, store)
        return await desk.pickup_list(deps, launch_id, store_id)
