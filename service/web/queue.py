"""The waiting room over HTTP: check in, status (free of Redis), a live stream, the draw."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Annotated

import msgspec
from litestar import Controller, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import FromPath
from litestar.response import ServerSentEvent

from service.errors import FairdropError, LeftQueue
from service.infra.outages import outage
from service.queue import checkin, draw, leave, lottery, tickets
from service.queue.status import QueueStatus, QueueWatch, left_status
from service.queue.tickets import TicketClaims
from service.web.auth import (
    TICKET_COOKIE,
    channel_of,
    require_customer,
    require_shopper,
    require_ticket,
)
from service.web.forwarded import client_address
from service.web.params import AnyRequest, AppDeps
from service.web.ratelimit import (
    CHECKIN_PER_ADDRESS,
    CHECKIN_PER_REGISTRATION,
    STATUS_PER_ADDRESS,
    STATUS_PER_TICKET,
    limiter_of,
    take,
)


def watch_of(request: AnyRequest) -> QueueWatch:
    """The worker's queue view, read off the app state: the poll path is hot, and two
    injected dependencies cost Litestar a task group on every request."""
    watch: QueueWatch = request.app.state.watch
    return watch


_encoder = msgspec.json.Encoder()


TICKET_DESCRIPTION = (
    "A fresh queue ticket, given in answer to a ticket from before the draw once the"
    " draw (or a rebuilt queue) has placed its holder: use it from then on instead of"
    " the one checked in with, since holds go by the place a ticket carries. The"
    " `fd_ticket` cookie is replaced in the same response. Null otherwise."
)


class StatusOut(msgspec.Struct, frozen=True):
    status: QueueStatus
    ticket: Annotated[str | None, msgspec.Meta(description=TICKET_DESCRIPTION)] = None


def _ticket_cookie(launch_id: str, ticket: str) -> Cookie:
    return Cookie(
        key=TICKET_COOKIE,
        value=ticket,
        path="/",
        httponly=True,
        samesite="lax",
        max_age=tickets.TTL_MS // 1000,
    )


async def answer_status(deps: AppDeps, watch: QueueWatch, claims: TicketClaims) -> StatusOut:
    """The holder's status from memory; a pre-queue ticket is exchanged for a fresh one
    once the draw has ranked its holder, or once Redis may have lost their check-in."""
    status = await watch.status(claims)
    snap = watch.snapshots.get(claims.launch_id)
    if status.state != "prequeue" or claims.rank != tickets.PREQUEUE or snap is None:
        return StatusOut(status=status)
    drawn = snap.phase == "drawn"
    if not drawn and tickets.issued_ms(claims) >= snap.restored_ms:
        return StatusOut(status=status)
    # Check in (again): it returns the place Redis holds, the drawn one. Without one,
    # Redis lost the check-in: before the draw it is made again so the draw includes
    # the holder; after it (they did not poll in time) they queue behind the drawn,
    # rather than wait for a draw that has happened.
    try:
        done = await checkin.check_in(deps, claims.launch_id, claims.registration_id)
    except LeftQueue:
        return StatusOut(status=left_status(None, snap))  # left the pre-queue
    except FairdropError:
        return StatusOut(status=status)  # check-in closed meanwhile: nothing to exchange
    if drawn and done.rank is None:
        return StatusOut(status=status)  # Redis is still finishing the draw
    fresh = done.ticket
    claims = tickets.read(deps, fresh, claims.launch_id)
    return StatusOut(status=await watch.status(claims), ticket=fresh)


class QueueController(Controller):
    path = "/api/launches/{launch_id:str}"
    tags = ["waiting room"]

    @post(
        "/queue/checkin",
        operation_id="checkIn",
        status_code=200,
        summary="Check in to the waiting room; returns the ticket (same place every time)",
    )
    async def check_in(
        self, request: AnyRequest, deps: AppDeps, launch_id: FromPath[str]
    ) -> Response[checkin.CheckedIn]:
        claims = require_shopper(request, deps, launch_id)
        await take(
            deps,
            launch_id,
            (CHECKIN_PER_ADDRESS, client_address(request)),
            (CHECKIN_PER_REGISTRATION, str(claims.registration_id)),
        )
        done = await checkin.check_in(deps, launch_id, claims.registration_id)
        return Response(done, cookies=[_ticket_cookie(launch_id, done.ticket)])

    @get(
        "/queue/status",
        operation_id="queueStatus",
        summary="Where am I? Answered from memory: no Redis round trip",
    )
    async def status(self, request: AnyRequest, launch_id: FromPath[str]) -> Response[StatusOut]:
        # The hottest route: no injected dependencies (each costs a resolution per call).
        watch = watch_of(request)
        limiter = limiter_of(request)
        limiter.check(STATUS_PER_ADDRESS, client_address(request))
        claims = require_ticket(request, watch.deps, launch_id)
        limiter.check(STATUS_PER_TICKET, f"{launch_id}:{claims.registration_id}")
        out = await answer_status(watch.deps, watch, claims)
        if out.ticket is None:
            return Response(out)
        return Response(out, cookies=[_ticket_cookie(launch_id, out.ticket)])

    @post(
        "/queue/leave",
        operation_id="leaveQueue",
        status_code=200,
        summary="Give up my place in the queue, or my turn before holding: for good",
        description="Admission passes the place by at once: it takes no admission window,"
        " no room under the active cap and no unit, so the people behind move up. A"
        " place cannot be taken back: checking in again answers 409 `left-queue`."
        " Refused (409 `conflict`) while a hold of the turn is live, or once the turn"
        " is over. Leaving again answers the same. The ticket cookie is removed.",
    )
    async def leave_queue(
        self, request: AnyRequest, deps: AppDeps, launch_id: FromPath[str]
    ) -> Response[StatusOut]:
        registration_id = require_customer(request, deps, launch_id)
        # Per registration only: leaving is once, and a shared address (a household, a
        # proxy) must not keep its shoppers in a queue they want to leave.
        await take(deps, launch_id, (CHECKIN_PER_REGISTRATION, str(registration_id)))
        rank = await leave.leave(deps, launch_id, registration_id, channel=channel_of(request))
        # This worker knows at once (the others at their next refresh, within a fifth of
        # a second): the holder's other tickets read "left" here from now on.
        snap = await watch_of(request).refresh(launch_id)
        out = StatusOut(status=left_status(rank, snap))
        gone = Cookie(key=TICKET_COOKIE, value="", path="/", max_age=0, httponly=True)
        return Response(out, cookies=[gone])

    @get(
        "/queue/events",
        operation_id="queueEvents",
        summary="The same status as a server-sent-event stream",
    )
    async def events(
        self, request: AnyRequest, deps: AppDeps, launch_id: FromPath[str]
    ) -> ServerSentEvent:
        claims = require_ticket(request, deps, launch_id)
        watch = watch_of(request)
        # The first answer before the stream starts: a backend out is a 503 problem then.
        first = await answer_status(deps, watch, claims)

        async def stream() -> AsyncGenerator[str, None]:
            nonlocal claims
            out = first
            for _ in range(3600):
                if out.ticket is not None:
                    claims = tickets.read(deps, out.ticket, launch_id)
                yield _encoder.encode(out).decode()
                if out.status.state in ("closed", "lapsed", "done", "left"):
                    return
                await asyncio.sleep(min(out.status.next_poll_seconds, 5.0))
                try:
                    out = await answer_status(deps, watch, claims)
                except Exception as exc:
                    if outage(exc) is None:
                        raise
                    return  # a backend out mid-stream: it ends, and the browser reconnects

        return ServerSentEvent(stream(), event_type="status")

    @get(
        "/lottery/me",
        operation_id="lotteryResult",
        summary="Was I drawn? Invited, or my place on the waiting list (lottery mode)",
    )
    async def lottery_result(
        self, request: AnyRequest, deps: AppDeps, launch_id: FromPath[str]
    ) -> lottery.LotteryResult:
        claims = require_shopper(request, deps, launch_id)
        return await lottery.result(deps, launch_id, claims.registration_id)

    @get(
        "/draw",
        operation_id="drawCommitment",
        summary="The draw's commitment (sha256 of the seed), and the seed once revealed",
    )
    async def commitment(self, deps: AppDeps, launch_id: FromPath[str]) -> draw.Commitment:
        return await draw.commitment(deps, launch_id)

    @get(
        "/draw/published",
        operation_id="drawPublished",
        summary="The revealed seed and the drawn order of public ids, for verify-draw",
    )
    async def published(self, deps: AppDeps, launch_id: FromPath[str]) -> draw.PublishedDraw:
        return await draw.published(deps, launch_id)
