"""Requests another site's page made a browser send are refused (CSRF).

The staff session and the shopper's cookies are SameSite, which keeps them off requests
from other sites, but not from a sibling subdomain, and a sign-in form carries no
cookie at all (signing a victim in as someone else). So an unsafe request (anything
but GET, HEAD, OPTIONS) is refused with 403 `cross-origin-request` when the browser
says it comes from elsewhere:

- `Sec-Fetch-Site` (every current browser sends it): anything but `same-origin` or
  `none` (typed in, a bookmark) is elsewhere;
- else `Origin`: its host must be the request's `Host`, or the host of the links
  fairdrop makes (`FAIRDROP_PUBLIC_URL`, else the bound address);
- neither header: not a browser (curl, an app, a script), let through.

A request naming its credential in a header (`Authorization`, `X-API-Key`) is let
through: another site's page cannot send one without CORS, which fairdrop does not
grant. The same rules as Go's `net/http.CrossOriginProtection`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from litestar.types import HTTPScope

from service.errors import CrossOrigin

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_OURS = frozenset({"same-origin", "none"})


def _host_matches(origin: str, host: str) -> bool:
    """`origin`'s host and port are `host`; a `host` without a port (a proxy passing
    nginx's `$host`) is matched by the name alone."""
    parts = urlsplit(origin)
    if parts.netloc == host:
        return True
    return ":" not in host.rsplit("]", 1)[-1] and parts.hostname == host.lower()


def from_elsewhere(scope: HTTPScope, base_url: str) -> bool:
    """Whether an unsafe request is one another site's page made the browser send."""
    if scope["method"] in SAFE_METHODS:
        return False
    fetch_site = origin = None
    hosts: list[str] = []
    for name, value in scope["headers"]:
        if name in (b"authorization", b"x-api-key"):
            return False
        if name == b"sec-fetch-site":
            fetch_site = value.decode("latin-1").lower()
        elif name == b"origin":
            origin = value.decode("latin-1")
        elif name == b"host":
            hosts.append(value.decode("latin-1").split(",")[0].strip())
    if fetch_site is not None:
        return fetch_site not in _OURS
    if origin is None:
        return False
    hosts.append(urlsplit(base_url).netloc)
    return not any(h and _host_matches(origin, h) for h in hosts)


def refuse_cross_origin(scope: HTTPScope, base_url: str) -> None:
    """`CrossOrigin` (403) for a request another site's page made the browser send."""
    if from_elsewhere(scope, base_url):
        raise CrossOrigin(
            "This request came from a page on another site, so it was not carried out."
            " Open fairdrop's own page and try again there."
        )
