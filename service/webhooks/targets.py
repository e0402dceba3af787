"""Where a webhook may go: http(s) only, no credentials in the URL, and (unless
`FAIRDROP_WEBHOOK_ALLOW_PRIVATE`) only to public addresses, so an operator's key cannot
make fairdrop reach into its own network (SSRF). The address is checked when the URL
is registered and again before every attempt, since a name may resolve elsewhere later.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpx


class Refused(Exception):
    """The URL may not be a webhook target; the message says why, for the operator."""


def check_url(url: str) -> httpx.URL:
    """The URL parsed, if it is one a webhook may be sent to (the address aside)."""
    try:
        parsed = httpx.URL(url)
        host = parsed.host  # decoding a malformed IDNA name raises here
    except (httpx.InvalidURL, TypeError, ValueError) as exc:  # an IDNA error is a ValueError
        raise Refused(f"This is not a URL: {exc}.") from exc
    if parsed.scheme not in ("http", "https"):
        raise Refused("A webhook URL starts with https:// (or http://).")
    if parsed.userinfo:
        raise Refused(
            "A webhook URL may not carry a user name or password: the signature is how"
            " a receiver knows the call comes from fairdrop."
        )
    if not host:
        raise Refused("A webhook URL names a host.")
    return parsed


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def check_address(url: httpx.URL, *, allow_private: bool) -> None:
    """Refuse a host that is, or resolves to, a loopback, private, link-local or other
    non-public address (every address it resolves to must be public)."""
    if allow_private:
        return
    host = url.host
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, url.port or (443 if url.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise Refused(f"{host} does not resolve ({exc}).") from exc
    addresses = {str(info[4][0]) for info in infos}
    private = sorted(a for a in addresses if not _public(a))
    if private:
        raise Refused(
            f"{host} is a private or loopback address ({', '.join(private)}); webhooks go to"
            " public addresses only (FAIRDROP_WEBHOOK_ALLOW_PRIVATE=1 allows others)."
        )
