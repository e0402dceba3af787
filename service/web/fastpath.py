"""Launch day's two hottest requests, answered beside the framework on their happy path.

The status poll is most of the traffic (every waiter polls every few seconds) and needs
neither Redis nor Postgres: the ticket carries the rank, the worker keeps the counters.
The confirm is the heaviest write: its Redis and Postgres work is batched with every
other confirm in flight, so what is left per request is the framework (routing, a
signature model, a response object), as much again as the batched work.

`FastLane` wraps the app. Each lane calls the same service functions as its routed
handler and encodes the same response struct:

Only a path in plain ASCII without NUL is taken here (`service.web.storable` refuses
the rest in the routed app).

- `GET /api/launches/{id}/queue/status` with a genuine ticket, within its rate limits;
  anything else (no ticket, a forged or expired one, a limit reached, a ticket to
  re-issue after the draw) goes on to the routed handler, which answers in full.
- `POST /api/launches/{id}/holds/{hold}/confirm` with a genuine shopper token or ticket;
  a request without one, or one another site's page sent (`service.web.origin`), goes
  on to the routed handler. Once the confirm has run, its
  answer is given here, a refusal as the same problem details the routed app gives
  (`problems.domain_parts`), since running it again would not say the same thing (an
  expired hold is gone the second time).

`tests/test_fastpath.py` checks that both lanes answer as the routed handlers do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

import msgspec
from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import HTTPScope, Receive, Scope, Send

from service.errors import FairdropError
from service.stock.confirm_batch import ConfirmBatcher
from service.web import problems
from service.web.auth import credentials, read_ticket, registration_of
from service.web.forwarded import scope_address
from service.web.observe import name_route
from service.web.origin import from_elsewhere
from service.web.queue import answer_status
from service.web.ratelimit import STATUS_PER_ADDRESS, STATUS_PER_TICKET
from service.web.shopper import reservation_out

log = logging.getLogger(__name__)

_PREFIX = "/api/launches/"
_JSON, _PROBLEM = b"application/json", problems.MEDIA_TYPE.encode()
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class FastRoute:
    """A route the lane answers beside its routed handler: that handler's method, path
    template and operation id (its answers are counted under it), and the lane's method.
    `tests/test_fastpath.py` checks each stands beside a routed handler so named."""

    method: str
    template: str
    operation_id: str
    lane: str

    @property
    def suffix(self) -> str:
        """The template's end after its last parameter: what the path must end with."""
        return self.template.rsplit("}", 1)[1]


FAST_ROUTES: tuple[FastRoute, ...] = (
    FastRoute("GET", "/api/launches/{launch_id:str}/queue/status", "queueStatus", "_status"),
    FastRoute(
        "POST",
        "/api/launches/{launch_id:str}/holds/{hold_id:str}/confirm",
        "confirmHold",
        "_confirm",
    ),
)


class FastLane:
    """ASGI wrapper around the app (see the module's docstring)."""

    def __init__(self, app: Litestar) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            path: str = scope["path"]
            # Not plain ASCII (a NUL, a lone surrogate, ...): the routed app refuses it.
            if path.startswith(_PREFIX) and path.isascii() and "\x00" not in path:
                for route in FAST_ROUTES:
                    if scope["method"] == route.method and path.endswith(route.suffix):
                        middle = path[len(_PREFIX) : -len(route.suffix)]
                        if await getattr(self, route.lane)(scope, send, middle):
                            return
                        break
        await self.app(scope, receive, send)

    async def _status(self, scope: Scope, send: Send, launch_id: str) -> bool:
        state = self.app.state
        watch, limiter = state.get("watch"), state.get("limiter")
        if not launch_id or "/" in launch_id or watch is None or limiter is None:
            return False  # not this route, or not started yet
        try:
            claims = read_ticket(watch.deps, credentials(scope), launch_id)
            address = scope_address(scope, watch.deps.settings.trusted_networks)
            limiter.check(STATUS_PER_ADDRESS, address)
            limiter.check(STATUS_PER_TICKET, f"{launch_id}:{claims.registration_id}")
            out = await answer_status(watch.deps, watch, claims)
        except Exception:
            return False  # nothing was sent: the routed handler explains it, outages too
        if out.ticket is not None:
            return False  # a fresh ticket goes out as a cookie: the routed handler sets it
        name_route(scope, "queueStatus")
        await _send(send, 200, _JSON, _encoder.encode(out))
        return True

    async def _confirm(self, scope: Scope, send: Send, middle: str) -> bool:
        parts = middle.split("/")
        confirmer: ConfirmBatcher | None = self.app.state.get("confirmer")
        if len(parts) != 3 or parts[1] != "holds" or not all(parts) or confirmer is None:
            return False
        launch_id, _, hold_id = parts
        if from_elsewhere(cast(HTTPScope, scope), confirmer.deps.settings.base_url):
            return False  # another site's page sent it: the routed app refuses it
        sent = credentials(scope)
        try:
            registration_id = registration_of(confirmer.deps, launch_id, sent.customer_tokens())
        except FairdropError:
            return False  # nothing has happened yet: the routed handler explains it
        name_route(scope, "confirmHold")
        try:
            reservation = await confirmer.confirm(
                launch_id, registration_id, hold_id, channel=sent.channel
            )
        except Exception as exc:
            await _send_problem(send, problems.exception_parts("POST", scope["path"], exc))
        else:
            body = _encoder.encode(reservation_out(reservation))
            await _send(send, 201, _JSON, body)
        return True


async def _send_problem(send: Send, parts: tuple[dict[str, Any], dict[str, str] | None]) -> None:
    body, headers = parts
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await _send(send, body["status"], _PROBLEM, _encoder.encode(body), extra)


async def _send(
    send: Send,
    status: int,
    media_type: bytes,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", media_type),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
