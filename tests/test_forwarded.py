"""The client's address: forwarding headers are believed only from a trusted proxy, and
only as far as the chain of trusted hops reaches."""

from __future__ import annotations

from typing import Any

import pytest

from service.infra.settings import from_env, networks
from service.web.forwarded import scope_address

NGINX = networks("127.0.0.1")


def scope(peer: str | None, *headers: tuple[str, str]) -> Any:
    return {
        "type": "http",
        "client": None if peer is None else (peer, 50000),
        "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in headers],
    }


def xff(value: str) -> tuple[str, str]:
    return ("X-Forwarded-For", value)


def test_nobody_is_trusted_by_default() -> None:
    assert from_env({}).trusted_networks == ()
    assert scope_address(scope("203.0.113.9", xff("1.2.3.4")), ()) == "203.0.113.9"


def test_an_untrusted_peer_is_the_client_whatever_it_says() -> None:
    assert scope_address(scope("203.0.113.9", xff("1.2.3.4")), NGINX) == "203.0.113.9"
    forwarded = ("Forwarded", "for=1.2.3.4")
    assert scope_address(scope("203.0.113.9", forwarded), NGINX) == "203.0.113.9"


def test_behind_a_trusted_proxy_the_address_it_appended_is_the_client() -> None:
    assert scope_address(scope("127.0.0.1", xff("198.51.100.7")), NGINX) == "198.51.100.7"
    # The client sent its own X-Forwarded-For; nginx appended the real peer.
    spoofed = scope("127.0.0.1", xff("6.6.6.6, 198.51.100.7"))
    assert scope_address(spoofed, NGINX) == "198.51.100.7"
    # The proxy's own requests (nothing forwarded) are the proxy's.
    assert scope_address(scope("127.0.0.1"), NGINX) == "127.0.0.1"


def test_trusted_hops_are_skipped_right_to_left() -> None:
    trusted = networks("127.0.0.1/32, 10.0.0.0/8")
    chain = scope("127.0.0.1", xff("6.6.6.6, 198.51.100.7, 10.1.2.3"), xff("10.0.0.2"))
    assert scope_address(chain, trusted) == "198.51.100.7"
    assert scope_address(scope("10.0.0.9", xff("10.0.0.1, 10.0.0.2")), trusted) == "10.0.0.1"


def test_a_hop_a_trusted_proxy_could_not_name_is_that_proxy() -> None:
    trusted = networks("127.0.0.1/32, 10.0.0.0/8")
    assert scope_address(scope("127.0.0.1", xff("1.2.3.4, unknown, 10.0.0.5")), trusted) == (
        "10.0.0.5"
    )
    assert scope_address(scope("127.0.0.1", xff("garbage")), NGINX) == "127.0.0.1"


def test_rfc_7239_forwarded_when_there_is_no_x_forwarded_for() -> None:
    header = (
        "Forwarded",
        'for=6.6.6.6, for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8:cafe::17]:4711"',
    )
    assert scope_address(scope("127.0.0.1", header), NGINX) == "2001:db8:cafe::17"
    assert scope_address(scope("127.0.0.1", ("Forwarded", "For=192.0.2.1:80")), NGINX) == (
        "192.0.2.1"
    )
    assert scope_address(scope("127.0.0.1", ("Forwarded", "proto=https")), NGINX) == "127.0.0.1"
    both = scope("127.0.0.1", ("Forwarded", "for=6.6.6.6"), xff("198.51.100.7"))
    assert scope_address(both, NGINX) == "198.51.100.7", "X-Forwarded-For, as nginx sets it"


def test_ipv6_and_mapped_addresses() -> None:
    assert scope_address(scope("::ffff:127.0.0.1", xff("198.51.100.7")), NGINX) == "198.51.100.7"
    assert scope_address(scope("::1", xff("2001:db8::1")), networks("::1")) == "2001:db8::1"
    assert (
        scope_address(scope("::1", xff("::ffff:198.51.100.7")), networks("::1")) == "198.51.100.7"
    )
    assert scope_address(scope(None, xff("1.2.3.4")), NGINX) == "unknown"


def test_the_setting_takes_addresses_and_cidrs() -> None:
    settings = from_env({"FAIRDROP_TRUSTED_PROXIES": " 127.0.0.1, 10.0.0.0/8 ,::1,, 172.16.0.1/12"})
    assert [str(n) for n in settings.trusted_networks] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
        "::1/128",
        "172.16.0.0/12",
    ]
    with pytest.raises(SystemExit, match=r"FAIRDROP_TRUSTED_PROXIES.*nginx"):
        from_env({"FAIRDROP_TRUSTED_PROXIES": "10.0.0.0/8, nginx"})
