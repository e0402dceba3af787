"""A launch's exports as CSV over HTTP, streamed (roles admin and operator)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.params import FromPath
from litestar.response import Stream

from service.admin import exports
from service.web.auth import requires
from service.web.params import AppDeps

_CSV = "text/csv; charset=utf-8"


async def _stream(deps: AppDeps, launch_id: str, name: str) -> Stream:
    chunks = await exports.export(deps, launch_id, name)
    return Stream(
        chunks,
        media_type=_CSV,
        headers={"Content-Disposition": f'attachment; filename="{name}-{launch_id}.csv"'},
    )


class ExportController(Controller):
    path = "/api/admin/launches/{launch_id:str}/exports"
    guards = [requires("operator")]
    tags = ["admin"]

    @get(
        "/registrations.csv",
        operation_id="exportRegistrations",
        media_type=_CSV,
        summary="Every registration as CSV: contact, verification, draw and queue place",
    )
    async def registrations(self, deps: AppDeps, launch_id: FromPath[str]) -> Stream:
        return await _stream(deps, launch_id, "registrations")

    @get(
        "/reservations.csv",
        operation_id="exportReservations",
        media_type=_CSV,
        summary="Every reservation as CSV: code, store, SKU, status, channel, pickup",
    )
    async def reservations(self, deps: AppDeps, launch_id: FromPath[str]) -> Stream:
        return await _stream(deps, launch_id, "reservations")

    @get(
        "/audit.csv",
        operation_id="exportAudit",
        media_type=_CSV,
        summary="The launch's audit trail as CSV, oldest first",
    )
    async def audit(self, deps: AppDeps, launch_id: FromPath[str]) -> Stream:
        return await _stream(deps, launch_id, "audit")
