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
from service.errors import Unauthorized
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


# Shoppers read these (apps are told how to send credentials in the API's docs).
NOT_SIGNED_IN = "You are not signed in: open the link we e-mailed you, on this device."


def bearer(request: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The request's `Authorization: Bearer` token ("" if the header names no token),
    or None if it sends none."""
    return _credentials(request.scope, ())[0]


def requires(*roles: Role) -> Guard:
    """A guard: the caller's key (`require_key`) has one of `roles` (admin has them all).
    Handlers read it as their `who` parameter (`principal`). Guards of a controller and
    of its handler both run; the key is looked up once."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        known: Principal | None = connection.state.get(_PRINCIPAL)
        if known is None:
            connection.state[_PRINCIPAL] = await require_key(
                connection, connection.app.state.deps, *roles
            )
        else:
            known.require(*roles)

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
    presented = request.headers.get("x-api-key")
    if presented is None:
        presented = bearer(request)
    if presented is not None:
        principal = await authenticate(deps.pool, presented, now_of(deps))
    elif session := request.cookies.get(KEY_COOKIE):
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
    token, (cookie,) = _credentials(request.scope, (SHOPPER_COOKIE,), bearer_wins=True)
    presented = token if token is not None else cookie
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
    return scope_channel(request.scope)


def scope_channel(scope: Scope) -> str:
    """The channel a shopper's request comes through: `X-Fairdrop-Channel: app` from the
    app, else `web`. A shopper cannot name a staff channel: the audit trail would say
    the store or an operator did what the shopper did."""
    channel = (scope_header(scope, b"x-fairdrop-channel") or "web").lower()
    return channel if channel in SHOPPER_CHANNELS else "web"


def key_channel(who: Principal) -> str:
    """The channel of a key's requests, by its role (whatever a header says)."""
    return ROLE_CHANNELS[who.role]


def _credentials(
    scope: Scope, cookies: tuple[str, ...], *, bearer_wins: bool = False
) -> tuple[str | None, list[str | None]]:
    """The bearer token and the named cookies of a request, off its raw headers: what
    `bearer` and `request.cookies` give, without building the request's header and
    cookie maps (which cost a hold or a confirm more than checking its token).
    A bearer header that names no token gives "" (sent, and wrong), not None.
    With `bearer_wins`, a bearer token ends the reading: the cookies are not looked at
    (the caller must not use them), so they come back as None."""
    token: str | None = None
    authorized = False  # only the first Authorization header counts, as in headers.get
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        if name == b"authorization" and not authorized:
            authorized = True
            token = _bearer(value)
            if token is not None and bearer_wins:
                return token, [None] * len(cookies)
        elif name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, item = part.strip().partition("=")
                if key in cookies and item and key not in found:
                    found[key] = item.strip('"')
    return token, [found.get(c) for c in cookies]


def _bearer(authorization: bytes) -> str | None:
    """The token of an `Authorization: Bearer …` header value ("" if it names none);
    None for another scheme."""
    scheme, _, given = authorization.decode("latin-1").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else None


def scope_header(scope: Scope, name: bytes) -> str | None:
    """The first value of header `name` (lower case), off the raw headers."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def scope_token(scope: Scope, cookie: str) -> str:
    """The bearer token of a bare ASGI request (even an empty one: sent, and wrong), else
    its `cookie`; `Unauthorized` if none."""
    for name, value in scope["headers"]:  # an app's hold or poll: the bearer, found at once
        if name == b"authorization":
            bearer_token = _bearer(value)
            if bearer_token is not None:
                return bearer_token
            break  # only the first Authorization header counts; the cookie, then
    token, (found,) = _credentials(scope, (cookie,), bearer_wins=True)
    if token is not None:
        return token
    if found is not None:
        return found
    raise Unauthorized(
        "You have no place in the queue yet: open the waiting room from the link we e-mailed you."
    )


def require_ticket(request: AnyRequest, deps: Deps, launch_id: str) -> TicketClaims:
    """The caller's queue ticket (bearer or cookie), genuine and for this launch.

    Read off the raw headers: a hold and a status poll need nothing else of them, and
    building the request's header and cookie maps cost a hold more than checking the
    ticket's signature did.
    """
    return tickets.read(deps, scope_token(request.scope, TICKET_COOKIE), launch_id)


def as_shopper(deps: Deps, token: str, launch_id: str) -> int:
    return shopper_claims(deps, token, launch_id).registration_id


def as_ticket(deps: Deps, token: str, launch_id: str) -> int:
    return tickets.read(deps, token, launch_id).registration_id


TokenReader = Callable[[Deps, str, str], int]
CUSTOMER_READERS: tuple[TokenReader, ...] = (as_shopper, as_ticket)


def customer_tokens(request: AnyRequest) -> list[str]:
    """The credentials a shopper's request carries: its bearer token alone if it sends
    one (a wrong bearer is refused, never stood in for by a cookie), else its shopper
    and ticket cookies."""
    return scope_customer_tokens(request.scope)


def scope_customer_tokens(scope: Scope) -> list[str]:
    token, cookies = _credentials(scope, (SHOPPER_COOKIE, TICKET_COOKIE), bearer_wins=True)
    if token is not None:
        return [token]
    return [t for t in cookies if t]


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
    return registration_of(deps, launch_id, customer_tokens(request))
