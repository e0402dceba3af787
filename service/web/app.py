"""The Litestar application factory."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from litestar import Litestar, Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import Provide
from litestar.handlers.base import BaseRouteHandler

from service import jobs
from service.clock import Clock, SystemClock
from service.deps import Deps
from service.infra import db, metrics
from service.infra.redis import redis_for
from service.infra.settings import Settings, get_settings
from service.pages import routes as page_routes
from service.pages import template_config
from service.queue.status import QueueWatch
from service.stock.confirm_batch import ConfirmBatcher
from service.web import health
from service.web import metrics as metrics_route
from service.web.admin import AdminController
from service.web.agent import AgentController
from service.web.auth import principal
from service.web.dashboard import DashboardController
from service.web.exports import ExportController
from service.web.openapi import FairdropOpenAPIConfig
from service.web.origin import refuse_cross_origin
from service.web.problems import EXCEPTION_HANDLERS
from service.web.queue import QueueController
from service.web.ratelimit import Limiter
from service.web.registration import RegistrationController
from service.web.selfservice import SelfServiceController
from service.web.shopper import ShopperController
from service.web.staff import StaffController
from service.web.storable import refuse_unstorable
from service.web.webhooks import WebhookController

log = logging.getLogger(__name__)


def _provide_deps(state: State) -> Deps:
    deps: Deps = state.deps
    return deps


def _lifespan(settings: Settings, clock: Clock) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pool = await db.create_pool(settings)
        redis = redis_for(settings)
        deps = Deps(settings=settings, pool=pool, redis=redis, clock=clock)
        app.state.deps = deps
        app.state.watch = watch = QueueWatch(deps)
        app.state.limiter = Limiter(enabled=settings.rate_limits, workers=settings.workers)
        app.state.confirmer = confirmer = ConfirmBatcher(deps)
        try:
            async with contextlib.AsyncExitStack() as stack:
                await stack.enter_async_context(confirmer.running())
                await stack.enter_async_context(
                    jobs.running(deps, watch, sweep=settings.background)
                )
                yield
        finally:
            await redis.aclose()
            await pool.close()
            metrics.worker_exit()

    return lifespan


async def _guard(request: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Before every routed handler, and before its own guards (the caller's key): another
    site's page cannot make a browser act (`service.web.origin`), and text Postgres
    cannot store is refused (`service.web.storable`)."""
    assert isinstance(request, Request)  # every route is HTTP
    deps: Deps = request.app.state.deps
    refuse_cross_origin(request.scope, deps.settings.base_url)
    await refuse_unstorable(request)


def create_app(
    settings: Settings | None = None,
    clock: Clock | None = None,
    *,
    extra_handlers: Sequence[Any] = (),
) -> Litestar:
    """Build the app. Its lifespan opens the Postgres pool and the Redis client.

    `extra_handlers` are mounted beside fairdrop's own (the benchmarks' baselines).
    """
    settings = settings or get_settings()
    handlers: list[Any] = [
        AdminController,
        ShopperController,
        RegistrationController,
        QueueController,
        StaffController,
        AgentController,
        SelfServiceController,
        DashboardController,
        ExportController,
        WebhookController,
        health.healthz,
        health.readyz,
        metrics_route.metrics,
        *page_routes(),
    ]
    handlers += extra_handlers
    return Litestar(
        route_handlers=handlers,
        dependencies={
            "deps": Provide(_provide_deps, sync_to_thread=False),
            "who": Provide(principal, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        template_config=template_config(),
        lifespan=[_lifespan(settings, clock or SystemClock())],
        request_max_body_size=settings.max_body_bytes,
        guards=[_guard],
        openapi_config=FairdropOpenAPIConfig(
            title="fairdrop",
            version="0.1.0",
            description="Runs the launch of a scarce product fairly and without falling over.",
        ),
        debug=False,
    )
