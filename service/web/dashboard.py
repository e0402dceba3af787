"""The operations dashboard's numbers over HTTP (role operator)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.params import FromPath

from service.admin import dashboard as board
from service.queue.status import QueueWatch
from service.web.auth import requires
from service.web.params import AnyRequest, AppDeps


class DashboardController(Controller):
    path = "/api/admin/launches/{launch_id:str}/dashboard"
    tags = ["admin"]
    guards = [requires("operator")]

    @get(
        "/",
        operation_id="launchDashboard",
        summary="Live counters of one launch: registrations, queue, admission, stock, pickups",
    )
    async def dashboard(
        self, request: AnyRequest, deps: AppDeps, launch_id: FromPath[str]
    ) -> board.Dashboard:
        # The worker's admission snapshot (refreshed every ~200 ms for every launch with
        # a queue); none yet means no queue to count.
        watch: QueueWatch = request.app.state.watch
        return await board.dashboard(
            deps, launch_id, watch.snapshots.get(launch_id), watch.pace(launch_id)
        )
