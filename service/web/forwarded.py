"""The client's address: the TCP peer, unless the peer is a trusted proxy that says whom
it forwarded the request for.

`FAIRDROP_TRUSTED_PROXIES` names the proxies (addresses or CIDRs); by default nobody is
trusted and forwarding headers are ignored, since any client can send them. Behind a
trusted proxy the chain in `X-Forwarded-For` (else RFC 7239 `Forwarded`) is walked
from the right, skipping trusted hops: the first untrusted address is the client, for
only a trusted proxy wrote it there; everything left of it is the client's own say.
A proxy in front must set `X-Forwarded-For` (nginx: `$proxy_add_x_forwarded_for`), or
set `Forwarded` and drop any `X-Forwarded-For` the client sent.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from litestar.types import Scope

from service.infra.settings import Network
from service.web.params import AnyRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
UNKNOWN = "unknown"
"""The address of a request with no peer (a unix socket, a test transport)."""


def client_address(request: AnyRequest) -> str:
    """The address of the client a routed request comes from."""
    return scope_address(request.scope, request.app.state.deps.settings.trusted_networks)


def scope_address(scope: Scope, trusted: tuple[Network, ...]) -> str:
    """The address of the client an ASGI request comes from (see the module)."""
    client = scope.get("client")
    if not client:
        return UNKNOWN
    peer: str = client[0]
    if not trusted:
        return peer
    here = _address(peer)
    if here is None or not _within(here, trusted):
        return peer
    for hop in reversed(list(_chain(scope))):
        address = _address(hop)
        if address is None:
            break  # a trusted proxy could not say who sent it: it stands for them
        here = address
        if not _within(here, trusted):
            break
    return str(here)


def from_trusted(scope: Scope, trusted: tuple[Network, ...]) -> bool:
    """Whether the request's TCP peer is a trusted proxy."""
    client = scope.get("client")
    here = _address(client[0]) if client else None
    return here is not None and _within(here, trusted)


def _within(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address in n for n in networks)


def _chain(scope: Scope) -> Iterable[str]:
    """The forwarded-for hops, nearest last: every `X-Forwarded-For`, else every
    `Forwarded` element's `for=` (an element without one is an unknown hop)."""
    xff: list[str] = []
    forwarded: list[str] = []
    for name, value in scope["headers"]:
        if name == b"x-forwarded-for":
            xff.extend(value.decode("latin-1").split(","))
        elif name == b"forwarded" and not xff:
            forwarded.extend(value.decode("latin-1").split(","))
    if xff:
        return xff
    return (_for_of(element) for element in forwarded)


def _for_of(element: str) -> str:
    for pair in element.split(";"):
        key, _, value = pair.strip().partition("=")
        if key.lower() == "for":
            return value
    return UNKNOWN


def _address(hop: str) -> Address | None:
    """The address in a hop as proxies write it (`1.2.3.4`, `1.2.3.4:80`, `"[::1]:80"`,
    `::1`), IPv4-mapped IPv6 as IPv4; None for anything else (`unknown`, `_hidden`)."""
    text = hop.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
