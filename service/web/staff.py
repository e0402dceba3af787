"""The pickup desk over HTTP: API keys with role `staff`, scoped to one store."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.params import FromPath, QueryParameter

from service.auth.apikeys import Principal
from service.errors import BadRequest, NotFound
from service.pickup import desk
from service.web.auth import requires
from service.web.params import AppDeps, StoreQuery, Who
from service.web.ratelimit import LOOKUPS_PER_KEY, take

DayQuery = Annotated[date | None, QueryParameter(description="one day (UTC), YYYY-MM-DD")]


def _store(who: Principal, store: str | None, launch_id: str | None = None) -> tuple[str, str]:
    """(store, actor): a staff key's own store; an admin names one with `?store=`.

    Another store, or another launch than a key's own, does not exist for that key.
    """
    if who.launch_id is not None and launch_id is not None and who.launch_id != launch_id:
        raise NotFound("No such launch for this key.")
    if who.store_id is not None:
        if store is not None and store != who.store_id:
            raise NotFound("No such store for this key.")
        return who.store_id, who.actor
    if store is None:
        raise BadRequest("Name the store with ?store=… (a staff key knows its own).")
    return store, who.actor


class StaffController(Controller):
    path = "/api/staff/launches/{launch_id:str}"
    guards = [requires("staff")]
    tags = ["pickup desk"]

    @get(
        "/reservations/{code:str}",
        operation_id="pickupLookup",
        summary="Look a code up at this store (typed or scanned; forgiving)",
    )
    async def lookup(
        self,
        who: Who,
        deps: AppDeps,
        launch_id: FromPath[str],
        code: FromPath[str],
        store: StoreQuery = None,
    ) -> desk.PickupCard:
        store_id, actor = _store(who, store, launch_id)
        await take(deps, launch_id, (LOOKUPS_PER_KEY, actor))
        return await desk.lookup(deps, launch_id, store_id, code)

    @post(
        "/reservations/{code:str}/collect",
        operation_id="pickupCollect",
        status_code=200,
        summary="Mark collected, once; a second desk is told when and by whom",
    )
    async def collect(
        self,
        who: Who,
        deps: AppDeps,
        launch_id: FromPath[str],
        code: FromPath[str],
        store: StoreQuery = None,
    ) -> desk.PickupCard:
        store_id, actor = _store(who, store, launch_id)
        await take(deps, launch_id, (LOOKUPS_PER_KEY, actor))
        return await desk.collect(deps, launch_id, store_id, code, actor=actor)

    @get(
        "/pickups",
        operation_id="pickupList",
        summary="This store's pickups, with counts; `?day=YYYY-MM-DD` (UTC) for one day",
    )
    async def pickups(
        self,
        who: Who,
        deps: AppDeps,
        launch_id: FromPath[str],
        store: StoreQuery = None,
        day: DayQuery = None,
    ) -> desk.PickupList:
        store_id, _ = _store(who, store, launch_id)
        return await desk.pickup_list(deps, launch_id, store_id, day)

    @get(
        "/pickups.csv",
        operation_id="pickupListCsv",
        media_type="text/csv",
        summary="The same list as CSV (header row: code, name, SKU, status, …)",
    )
    async def pickups_csv(
        self,
        who: Who,
        deps: AppDeps,
        launch_id: FromPath[str],
        store: StoreQuery = None,
        day: DayQuery = None,
    ) -> Response[str]:
        store_id, _ = _store(who, store, launch_id)
        listing = await desk.pickup_list(deps, launch_id, store_id, day)
        stem = re.sub(r"[^A-Za-z0-9_-]", "_", f"pickups-{launch_id}-{store_id}")
        name = f"{stem}{'-' + day.isoformat() if day else ''}.csv"
        return Response(
            desk.pickup_csv(listing),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
