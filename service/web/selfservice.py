"""Self-service over HTTP: the shopper's own status view and actions.

Credentials, any one of: the signed link from the e-mails (`?token=…`), the shopper
token or queue ticket (`Authorization: Bearer …` or their cookies). The registration
is the one the credential names; another's reservation or hold is 404.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.params import FromPath, HeaderParameter, QueryParameter

from service.customers import actions, links, selfservice
from service.deps import Deps
from service.queue.status import QueueWatch
from service.stock.models import Reservation
from service.web.auth import CUSTOMER_READERS, channel_of, credentials, registration_of
from service.web.params import AnyRequest, AppDeps, HoldId, ReservationId
from service.web.ratelimit import RESEND_PER_REGISTRATION, take

TokenQuery = Annotated[str | None, QueryParameter(max_length=2000)]
IdempotencyKey = Annotated[
    str | None, HeaderParameter(name="Idempotency-Key", max_length=100, required=False)
]


def self_registration(request: AnyRequest, deps: Deps, launch_id: str, token: str | None) -> int:
    """The registration the caller's credential names (link, shopper token or ticket).

    A `?token=` is taken alone: a bad link fails even when a cookie would do.
    """
    return registration_of(
        deps,
        launch_id,
        [token] if token is not None else credentials(request.scope).customer_tokens(),
        (links.read, *CUSTOMER_READERS),
        missing="You are not signed in: open the link we e-mailed you.",
    )


class SelfServiceController(Controller):
    path = "/api/launches/{launch_id:str}/manage"
    tags = ["self-service"]

    @get(
        "/",
        operation_id="selfView",
        summary="My registration: draw, queue place, holds, reservations, history in plain words",
    )
    async def view(
        self, request: AnyRequest, deps: AppDeps, launch_id: FromPath[str], token: TokenQuery = None
    ) -> selfservice.SelfView:
        registration = self_registration(request, deps, launch_id, token)
        watch: QueueWatch = request.app.state.watch
        return await selfservice.view(deps, launch_id, registration, watch)

    @post(
        "/holds/{hold_id:str}/cancel",
        operation_id="selfCancelHold",
        status_code=204,
        summary="Let one of my holds go; its unit returns once",
    )
    async def cancel_hold(
        self,
        request: AnyRequest,
        deps: AppDeps,
        launch_id: FromPath[str],
        hold_id: HoldId,
        token: TokenQuery = None,
    ) -> None:
        registration = self_registration(request, deps, launch_id, token)
        await actions.cancel_hold(deps, launch_id, registration, hold_id)

    @post(
        "/reservations/{reservation_id:int}/cancel",
        operation_id="selfCancelReservation",
        status_code=200,
        summary="Cancel my reservation before pickup: the unit returns once, the code stops",
    )
    async def cancel_reservation(
        self,
        request: AnyRequest,
        deps: AppDeps,
        launch_id: FromPath[str],
        reservation_id: ReservationId,
        token: TokenQuery = None,
    ) -> Reservation:
        registration = self_registration(request, deps, launch_id, token)
        return await actions.cancel_reservation(
            deps, launch_id, registration, reservation_id, channel=channel_of(request)
        )

    @post(
        "/reservations/{reservation_id:int}/resend",
        operation_id="selfResendCode",
        status_code=202,
        summary="E-mail my code again (once per 2 minutes; same Idempotency-Key, same answer)",
    )
    async def resend(
        self,
        request: AnyRequest,
        deps: AppDeps,
        launch_id: FromPath[str],
        reservation_id: ReservationId,
        token: TokenQuery = None,
        idempotency_key: IdempotencyKey = None,
    ) -> actions.Resent:
        registration = self_registration(request, deps, launch_id, token)
        await take(deps, launch_id, (RESEND_PER_REGISTRATION, str(registration)))
        return await actions.resend_code(
            deps,
            launch_id,
            registration,
            reservation_id,
            channel=channel_of(request),
            request_key=idempotency_key,
        )

    @get(
        "/reservations/{reservation_id:int}/calendar.ics",
        operation_id="selfCalendar",
        summary="My pickup window as an iCalendar event (text/calendar)",
        media_type="text/calendar; charset=utf-8",
    )
    async def calendar(
        self,
        request: AnyRequest,
        deps: AppDeps,
        launch_id: FromPath[str],
        reservation_id: ReservationId,
        token: TokenQuery = None,
    ) -> Response[str]:
        registration = self_registration(request, deps, launch_id, token)
        text = await actions.calendar_file(deps, launch_id, registration, reservation_id)
        return Response(
            text,
            media_type="text/calendar; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="pickup-{reservation_id}.ics"',
                "Cache-Control": "private, no-store",
            },
        )

    @get(
        "/reservations/{reservation_id:int}/qr.png",
        operation_id="selfQrPng",
        summary="My code as a QR code (PNG)",
        media_type="image/png",
    )
    async def qr_png(
        self,
        request: AnyRequest,
        deps: AppDeps,
        launch_id: FromPath[str],
        reservation_id: ReservationId,
        token: TokenQuery = None,
    ) -> Response[bytes]:
        registration = self_registration(request, deps, launch_id, token)
        png = await actions.qr(deps, launch_id, registration, reservation_id, "png")
        return Response(png, media_type="image/png", headers={"Cache-Control": "private"})

    @get(
        "/reservations/{reservation_id:int}/qr.svg",
        operation_id="selfQrSvg",
        summary="My code as a QR code (SVG)",
        media_type="image/svg+xml",
    )
    async def qr_svg(
        self,
        request: AnyRequest,
        deps: AppDeps,
        launch_id: FromPath[str],
        reservation_id: ReservationId,
        token: TokenQuery = None,
    ) -> Response[bytes]:
        registration = self_registration(request, deps, launch_id, token)
        svg = await actions.qr(deps, launch_id, registration, reservation_id, "svg")
        return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "private"})
