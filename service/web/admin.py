"""Launch administration over HTTP: API keys with role admin or operator."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, delete, get, patch, post, put
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter

from service.admin import allocations, audit, launches
from service.admin.audit import Event
from service.admin.models import (
    AllocationSet,
    ImportReport,
    Item,
    ItemCreate,
    ItemId,
    Launch,
    LaunchCreate,
    LaunchUpdate,
    Registration,
    ShopperToken,
    Transition,
)
from service.auth.apikeys import KeyInfo, Role, create_key, list_keys, revoke_key
from service.errors import BadRequest
from service.pickup.windows import now_of
from service.queue import registrations
from service.stock import reservations
from service.stock.counts import postgres_counts, redis_counts
from service.stock.models import Reservation, StockCount
from service.stock.rebuild import RebuildReport, ensure_loaded, rebuild
from service.web.auth import key_channel, requires
from service.web.params import AnyRequest, AppDeps, KeyId, Who

_OPS: tuple[Role, ...] = ("operator",)


class StockView(msgspec.Struct):
    launch_id: FromPath[str]
    counts: list[StockCount]
    postgres: dict[str, tuple[int, int]]


class KeyCreate(msgspec.Struct, forbid_unknown_fields=True):
    role: Role
    label: Annotated[str, msgspec.Meta(max_length=200)] = ""
    store_id: ItemId | None = None
    launch_id: str | None = None


class KeyCreated(msgspec.Struct):
    key: str
    role: str


class AdminController(Controller):
    path = "/api/admin"
    tags = ["admin"]
    guards = [requires(*_OPS)]

    @get("/launches", operation_id="listLaunches")
    async def list_launches(self, deps: AppDeps) -> list[Launch]:
        return await launches.list_launches(deps)

    @post("/launches", operation_id="createLaunch")
    async def create_launch(self, deps: AppDeps, who: Who, data: JSONBody[LaunchCreate]) -> Launch:
        return await launches.create_launch(deps, data, actor=who.actor, channel="admin")

    @get("/launches/{launch_id:str}", operation_id="getLaunchAdmin")
    async def get_launch(self, deps: AppDeps, launch_id: FromPath[str]) -> Launch:
        return await launches.get_launch(deps, launch_id)

    @patch("/launches/{launch_id:str}", operation_id="updateLaunch")
    async def update_launch(
        self,
        deps: AppDeps,
        who: Who,
        launch_id: FromPath[str],
        data: JSONBody[LaunchUpdate],
    ) -> Launch:
        return await launches.update_launch(deps, launch_id, data, actor=who.actor, channel="admin")

    @post("/launches/{launch_id:str}/transitions", operation_id="transitionLaunch", status_code=200)
    async def transition(
        self,
        deps: AppDeps,
        who: Who,
        launch_id: FromPath[str],
        data: JSONBody[Transition],
    ) -> Launch:
        return await launches.transition(deps, launch_id, data, actor=who.actor, channel="admin")

    @get("/launches/{launch_id:str}/stores", operation_id="listStores")
    async def list_stores(self, deps: AppDeps, launch_id: FromPath[str]) -> list[Item]:
        return await launches.list_items(deps, launch_id, "stores")

    @post("/launches/{launch_id:str}/stores", operation_id="createStore")
    async def create_store(
        self,
        deps: AppDeps,
        who: Who,
        launch_id: FromPath[str],
        data: JSONBody[ItemCreate],
    ) -> Item:
        return await launches.add_item(
            deps, launch_id, "stores", data, actor=who.actor, channel="admin"
        )

    @get("/launches/{launch_id:str}/skus", operation_id="listSkus")
    async def list_skus(self, deps: AppDeps, launch_id: FromPath[str]) -> list[Item]:
        return await launches.list_items(deps, launch_id, "skus")

    @post("/launches/{launch_id:str}/skus", operation_id="createSku")
    async def create_sku(
        self,
        deps: AppDeps,
        who: Who,
        launch_id: FromPath[str],
        data: JSONBody[ItemCreate],
    ) -> Item:
        return await launches.add_item(
            deps, launch_id, "skus", data, actor=who.actor, channel="admin"
        )

    @put(
        "/launches/{launch_id:str}/allocations/{store_id:str}/{sku_id:str}",
        operation_id="setAllocation",
    )
    async def set_allocation(
        self,
        deps: AppDeps,
        who: Who,
        launch_id: FromPath[str],
        store_id: FromPath[str],
        sku_id: FromPath[str],
        data: JSONBody[AllocationSet],
    ) -> StockCount:
        return await allocations.set_allocation(
            deps, launch_id, store_id, sku_id, data.allocated, actor=who.actor, channel="admin"
        )

    @get("/launches/{launch_id:str}/stock", operation_id="getStock")
    async def stock(self, deps: AppDeps, launch_id: FromPath[str]) -> StockView:
        await launches.get_launch(deps, launch_id)
        await ensure_loaded(deps, launch_id)
        return StockView(
            launch_id, await redis_counts(deps, launch_id), await postgres_counts(deps, launch_id)
        )

    @post("/launches/{launch_id:str}/rebuild", operation_id="rebuildLaunch", status_code=200)
    async def rebuild(self, deps: AppDeps, launch_id: FromPath[str]) -> RebuildReport:
        return await rebuild(deps, launch_id)

    @post(
        "/launches/{launch_id:str}/registrations/import",
        operation_id="importRegistrations",
        status_code=200,
        request_max_body_size=32 * 1024 * 1024,
    )
    async def import_registrations(
        self, request: AnyRequest, deps: AppDeps, who: Who, launch_id: FromPath[str]
    ) -> ImportReport:
        body = await request.body()
        kind = request.headers.get("content-type", "application/json").split(";")[0].strip()
        if kind == "text/csv":
            try:
                text = body.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise BadRequest("The CSV is not UTF-8.") from exc
            rows = registrations.parse_csv(text)
        elif kind == "application/json":
            rows = registrations.parse_json(body)
        else:
            raise BadRequest("Send the list as application/json or text/csv.")
        return await registrations.import_registrations(
            deps,
            launch_id,
            rows,
            actor=who.actor,
            channel="admin",
        )

    @get("/launches/{launch_id:str}/registrations", operation_id="listRegistrations")
    async def list_registrations(
        self,
        deps: AppDeps,
        launch_id: FromPath[str],
        after: Annotated[int, QueryParameter(ge=0, le=2**62)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> list[Registration]:
        return await registrations.list_registrations(deps, launch_id, limit, after)

    @post(
        "/launches/{launch_id:str}/registrations/{registration_id:int}/token",
        operation_id="issueShopperToken",
        status_code=200,
    )
    async def token(
        self,
        deps: AppDeps,
        launch_id: FromPath[str],
        registration_id: Annotated[int, PathParameter(ge=1, le=2**62)],
    ) -> ShopperToken:
        return await registrations.issue_token(deps, launch_id, registration_id)

    @get(
        "/launches/{launch_id:str}/reservations/by-code/{code:str}",
        operation_id="findReservationByCode",
        summary="Look a reservation up by its code (case, spaces, hyphens, O/I/L forgiven)",
    )
    async def by_code(
        self,
        deps: AppDeps,
        launch_id: FromPath[str],
        code: FromPath[str],
    ) -> Reservation:
        return await reservations.by_code(deps, launch_id, code)

    @get("/launches/{launch_id:str}/events", operation_id="listEvents")
    async def events(
        self,
        deps: AppDeps,
        launch_id: FromPath[str],
        after: Annotated[int, QueryParameter(ge=0, le=2**62)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 200,
    ) -> list[Event]:
        return await audit.launch_events(deps, launch_id, after=after, limit=limit)

    @post("/keys", operation_id="createKey", guards=[requires("admin")])
    async def create_key(self, deps: AppDeps, who: Who, data: JSONBody[KeyCreate]) -> KeyCreated:
        if (data.role == "staff") != (data.store_id is not None):
            raise BadRequest("A staff key needs a store_id; other roles take none.")
        key = await create_key(
            deps.pool,
            data.role,
            label=data.label,
            store_id=data.store_id,
            launch_id=data.launch_id,
            actor=who.actor,
            channel=key_channel(who),
        )
        return KeyCreated(key=key, role=data.role)

    @get(
        "/keys",
        operation_id="listKeys",
        guards=[requires("admin")],
        summary="Every API key (never its secret)",
    )
    async def list_keys(self, deps: AppDeps) -> list[KeyInfo]:
        return await list_keys(deps.pool)

    @delete(
        "/keys/{key_id:str}",
        operation_id="revokeKey",
        status_code=200,
        guards=[requires("admin")],
        summary="Revoke a key: refused by every worker from its next request",
    )
    async def revoke_key(self, deps: AppDeps, who: Who, key_id: KeyId) -> KeyInfo:
        return await revoke_key(
            deps.pool,
            key_id,
            now=now_of(deps),
            actor=who.actor,
            channel=key_channel(who),
        )
