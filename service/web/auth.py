"""Reading credentials off a request: API keys (staff and operators) and shopper tokens."""

from __future__ import annotations

from service.auth.apikeys import Principal, Role, authenticate
from service.auth.tokens import ShopperClaims
from service.deps import Deps
from service.errors import Unauthorized
from service.queue.admission import shopper_claims
from service.web.params import AnyRequest

SHOPPER_COOKIE = "fd_shopper"


def bearer(request: AnyRequest) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


async def require_key(request: AnyRequest, deps: Deps, *roles: Role) -> Principal:
    presented = request.headers.get("x-api-key") or bearer(request)
    if not presented:
        raise Unauthorized("Send an API key as `Authorization: Bearer fd_…` or `X-API-Key`.")
    principal = await authenticate(deps.pool, presented)
    principal.require(*roles)
    return principal


def require_shopper(request: AnyRequest, deps: Deps, launch_id: str) -> ShopperClaims:
    token = bearer(request) or request.cookies.get(SHOPPER_COOKIE)
    if not token:
        raise Unauthorized("Send the shopper token as `Authorization: Bearer …` or the cookie.")
    return shopper_claims(deps, token, launch_id)


def channel_of(request: AnyRequest, default: str = "web") -> str:
    channel = request.headers.get("x-fairdrop-channel", default).lower()
    return channel if channel in ("web", "app", "store", "phone", "admin") else default
