"""Webhook endpoints over HTTP (roles admin and operator): register, list with the
delivery log, change, rotate the secret, delete, replay a delivery."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter

from service.web.auth import requires
from service.web.params import AppDeps, DeliveryId, Who
from service.webhooks import endpoints
from service.webhooks.models import (
    Delivery,
    DeliveryStatus,
    Endpoint,
    EndpointCreate,
    EndpointCreated,
    EndpointUpdate,
    RotateSecret,
    SecretRotated,
)

EndpointId = Annotated[str, PathParameter(pattern=r"^wh_[0-9a-f]{16}$")]


class WebhookController(Controller):
    path = "/api/admin/launches/{launch_id:str}/webhooks"
    tags = ["admin", "webhooks"]
    guards = [requires("operator")]

    @post(
        "/",
        operation_id="createWebhook",
        status_code=201,
        summary='Register an endpoint for event types (or all: `["*"]`); its secret is shown once',
    )
    async def create(
        self,
        deps: AppDeps,
        who: Who,
        launch_id: FromPath[str],
        data: JSONBody[EndpointCreate],
    ) -> EndpointCreated:
        return await endpoints.create_endpoint(
            deps, launch_id, data, actor=who.actor, channel="admin"
        )

    @get("/", operation_id="listWebhooks", summary="The launch's endpoints with their delivery log")
    async def list_all(self, deps: AppDeps, launch_id: FromPath[str]) -> list[Endpoint]:
        return await endpoints.list_endpoints(deps, launch_id)

    @get("/{endpoint_id:str}", operation_id="getWebhook")
    async def get_one(
        self, deps: AppDeps, launch_id: FromPath[str], endpoint_id: EndpointId
    ) -> Endpoint:
        return await endpoints.get_endpoint(deps, launch_id, endpoint_id)

    @patch(
        "/{endpoint_id:str}",
        operation_id="updateWebhook",
        summary="Change the URL or event types, enable or disable",
    )
    async def update(
        self,
        deps: AppDeps,
        who: Who,
        launch_id: FromPath[str],
        endpoint_id: EndpointId,
        data: JSONBody[EndpointUpdate],
    ) -> Endpoint:
        return await endpoints.update_endpoint(
            deps, launch_id, endpoint_id, data, actor=who.actor, channel="admin"
        )

    @post(
        "/{endpoint_id:str}/rotate",
        operation_id="rotateWebhookSecret",
        status_code=200,
        summary="A new secret, shown once; the previous one signs too for `grace_seconds`",
    )
    async def rotate(
        self,
        deps: AppDeps,
        who: Who,
        launch_id: FromPath[str],
        endpoint_id: EndpointId,
        data: JSONBody[RotateSecret | None] = None,
    ) -> SecretRotated:
        return await endpoints.rotate_secret(
            deps, launch_id, endpoint_id, data or RotateSecret(), actor=who.actor, channel="admin"
        )

    @delete("/{endpoint_id:str}", operation_id="deleteWebhook", summary="Remove it with its queue")
    async def remove(
        self, deps: AppDeps, who: Who, launch_id: FromPath[str], endpoint_id: EndpointId
    ) -> None:
        await endpoints.delete_endpoint(
            deps, launch_id, endpoint_id, actor=who.actor, channel="admin"
        )

    @get(
        "/{endpoint_id:str}/deliveries",
        operation_id="listWebhookDeliveries",
        summary="The delivery log, newest first (`before`: a delivery id, to page back)",
    )
    async def deliveries(
        self,
        deps: AppDeps,
        launch_id: FromPath[str],
        endpoint_id: EndpointId,
        status: Annotated[DeliveryStatus | None, QueryParameter()] = None,
        before: Annotated[int | None, QueryParameter(ge=1, le=2**62)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> list[Delivery]:
        await endpoints.get_endpoint(deps, launch_id, endpoint_id)  # 404 for another launch's
        return await endpoints.list_deliveries(
            deps, launch_id, endpoint_id, status=status, before=before, limit=limit
        )

    @post(
        "/{endpoint_id:str}/deliveries/{delivery_id:int}/replay",
        operation_id="replayWebhookDelivery",
        status_code=202,
        summary="Send a delivery again now, with the same webhook-id",
    )
    async def replay(
        self,
        deps: AppDeps,
        who: Who,
        launch_id: FromPath[str],
        endpoint_id: EndpointId,
        delivery_id: DeliveryId,
    ) -> Delivery:
        return await endpoints.replay(
            deps, launch_id, endpoint_id, delivery_id, actor=who.actor, channel="admin"
        )
