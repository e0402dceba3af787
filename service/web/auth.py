"""Reading credentials off a request: API keys (staff and operators) and shopper tokens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard, Scope

from service.auth.apikeys import Principal, Role, authenticate
from service.auth.signin import session_principal
from service.auth.tokens import ShopperClaims
from service.deps import Deps
from service.errors import NotFound, Unauthorized
from service.pickup.windows import now_of
from service.queue import tickets
from service.queue.admission import shopper_claims
from service.queue.tickets import TicketClaims
from service.web.params import AnyRequest

SHOPPER_COOKIE = "fd_shopper"
TICKET_COOKIE = "fd_ticket"
KEY_COOKIE = "fd_key"
"""Set by the staff sign-in page (HttpOnly, SameSite=Strict): a signed session naming
an API key (`service.auth.signin`), good for the pages and the API they call."""
_COOKIES = frozenset((SHOPPER_COOKIE, TICKET_COOKIE, KEY_COOKIE))


# Shoppers read these (apps are told how to send credentials in the API's docs).
NOT_SIGNED_IN = "You are not signed in: open the link we e-mailed you, on this device."
NO_TICKET = (
    "You have no place in the queue yet: open the waiting room from the link we e-mailed you."
)


class Credentials:
    """What a request carries to say who it is, read off its raw headers in one pass:
    the first `Authorization: Bearer` token ("" if it names none: sent, and wrong), the
    first `X-API-Key`, fairdrop's cookies (parsed only if asked for), the channel. The
    routed handlers and the fast lane read them here alike; building Litestar's header
    and cookie maps cost a hold or a poll more than checking its token."""

    __slots__ = ("_channel", "_cookie_headers", "_cookies", "api_key", "bearer")

    def __init__(self, scope: Scope) -> None:
        self.bearer: str | None = None
        self.api_key: str | None = None
        self._channel: str | None = None
        self._cookie_headers: list[bytes] = []
        self._cookies: dict[str, str] | None = None
        authorized = False  # only the first Authorization header counts, as in headers.get
        for name, value in scope["headers"]:
            if name == b"authorization" and not authorized:
                authorized, self.bearer = True, _bearer(value)
            elif name == b"cookie":
                self._cookie_headers.append(value)
            elif name == b"x-api-key" and self.api_key is None:
                self.api_key = value.decode("latin-1")
            elif name == b"x-fairdrop-channel" and self._channel is None:
                self._channel = value.decode("latin-1").lower()

    def cookie(self, name: str) -> str | None:
        """One of fairdrop's cookies (None if unsent or empty); of two of one name, the
        last, as in Litestar's cookie map."""
        if self._cookies is None:
            self._cookies = {}
            for value in self._cookie_headers:
                for part in value.decode("latin-1").split(";"):
                    key, _, item = part.partition("=")
                    if key.strip() in _COOKIES:
                        self._cookies[key.strip()] = item.strip().strip('"')
        return self._cookies.get(name) or None

    def token(self, cookie: str) -> str | None:
        """The bearer token if one is sent (a wrong one is refused, never stood in for by a
        cookie), else the `cookie`."""
        return self.bearer if self.bearer is not None else self.cookie(cookie)

    def customer_tokens(self) -> list[str]:
        """What a shopper's request carries: its bearer token alone, else its shopper and
        ticket cookies."""
        if self.bearer is not None:
            return [self.bearer]
        return [t for t in (self.cookie(SHOPPER_COOKIE), self.cookie(TICKET_COOKIE)) if t]

    @property
    def channel(self) -> str:
        """The channel a shopper's request comes through: `X-Fairdrop-Channel: app` from
        the app, else `web`. A shopper cannot name a staff channel: the audit trail would
        say the store or an operator did what the shopper did."""
        return self._channel if self._channel in SHOPPER_CHANNELS else "web"


def credentials(scope: Scope) -> Credentials:
    return Credentials(scope)


def requires(*roles: Role) -> Guard:
    """A guard: the caller's key (`require_key`) has one of `roles` (admin has them all);
    a key made for one launch finds no other in the path.
    Handlers read it as their `who` parameter (`principal`). Guards of a controller and
    of its handler both run; the key is looked up once."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        known: Principal | None = connection.state.get(_PRINCIPAL)
        if known is None:
            known = await require_key(connection, connection.app.state.deps, *roles)
            connection.state[_PRINCIPAL] = known
        else:
            known.require(*roles)
        launch_id = connection.path_params.get("launch_id")
        if known.launch_id is not None and launch_id is not None and known.launch_id != launch_id:
            raise NotFound("No such launch for this key.")  # another launch, as far as it knows

    return guard


_PRINCIPAL = "fairdrop_principal"


def principal(request: AnyRequest) -> Principal:
    """The `who` dependency: the key a `requires` guard let through."""
    who: Principal | None = request.state.get(_PRINCIPAL)
    if who is None:  # a handler that reads `who` without a guard: a bug, said plainly
        raise RuntimeError(f"{request.scope['path']}: `who` needs a `requires(...)` guard")
    return who


async def require_key(
    request: ASGIConnection[Any, Any, Any, Any], deps: Deps, *roles: Role
) -> Principal:
    """The caller's key: `X-API-Key`, else the bearer token, else the staff pages' session
    cookie. A credential sent and wrong is refused; the next is never tried in its place."""
    sent = credentials(request.scope)
    presented = sent.api_key if sent.api_key is not None else sent.bearer
    if presented is not None:
        principal = await authenticate(deps.pool, presented, now_of(deps))
    elif session := sent.cookie(KEY_COOKIE):
        principal = await session_principal(deps, session)
    else:
        raise Unauthorized("Send an API key as `Authorization: Bearer fd_…` or `X-API-Key`.")
    principal.require(*roles)
    return principal


def shopper_cookie(deps: Deps, token: str) -> Cookie:
    """The cookie that keeps a verified shopper's token in their browser."""
    return Cookie(
        key=SHOPPER_COOKIE,
        value=token,
        path="/",
        httponly=True,
        samesite="lax",
        max_age=deps.settings.shopper_token_ttl_seconds,
    )


def require_shopper(request: AnyRequest, deps: Deps, launch_id: str) -> ShopperClaims:
    presented = credentials(request.scope).token(SHOPPER_COOKIE)
    if presented is None:
        raise Unauthorized(NOT_SIGNED_IN)
    return shopper_claims(deps, presented, launch_id)


SHOPPER_CHANNELS = ("web", "app")
"""What a shopper's request may say it comes through (`X-Fairdrop-Channel`)."""
ROLE_CHANNELS: dict[Role, str] = {
    "admin": "admin",
    "operator": "admin",
    "staff": "store",
    "agent": "phone",
}


def channel_of(request: AnyRequest) -> str:
    return credentials(request.scope).channel


def key_channel(who: Principal) -> str:
    """The channel of a key's requests, by its role (whatever a header says)."""
    return ROLE_CHANNELS[who.role]


def _bearer(authorization: bytes) -> str | None:
    """The token of an `Authorization: Bearer …` header value ("" if it names none);
    None for another scheme."""
    scheme, _, given = authorization.decode("latin-1").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else None


def require_ticket(request: AnyRequest, deps: Deps, launch_id: str) -> TicketClaims:
    """The caller's queue ticket (bearer or cookie), genuine and for this launch."""
    return read_ticket(deps, credentials(request.scope), launch_id)


def read_ticket(deps: Deps, sent: Credentials, launch_id: str) -> TicketClaims:
    token = sent.token(TICKET_COOKIE)
    if token is None:
        raise Unauthorized(NO_TICKET)
    return tickets.read(deps, token, launch_id)


def as_shopper(deps: Deps, token: str, launch_id: str) -> int:
    return shopper_claims(deps, token, launch_id).registration_id


def as_ticket(deps: Deps, token: str, launch_id: str) -> int:
    return tickets.read(deps, token, launch_id).registration_id


TokenReader = Callable[[Deps, str, str], int]
CUSTOMER_READERS: tuple[TokenReader, ...] = (as_shopper, as_ticket)


def registration_of(
    deps: Deps,
    launch_id: str,
    tokens: list[str],
    readers: tuple[TokenReader, ...] = CUSTOMER_READERS,
    *,
    missing: str = NOT_SIGNED_IN,
) -> int:
    """The registration the first genuine token names (each tried by each reader in turn);
    else the first reason a token was refused, or `missing` when there is none."""
    if not tokens:
        raise Unauthorized(missing)
    failure: Unauthorized | None = None
    for token in tokens:
        for read in readers:
            try:
                return read(deps, token, launch_id)
            except Unauthorized as exc:
                failure = failure or exc
    assert failure is not None
    raise failure


def require_customer(request: AnyRequest, deps: Deps, launch_id: str) -> int:
    """The registration the caller speaks for: by shopper link token or queue ticket."""
    return registration_of(deps, launch_id, credentials(request.scope).customer_tokens())
