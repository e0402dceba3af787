"""Credentials read off the raw headers agree with Litestar's own header and cookie maps."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar import Request

from service.web.auth import (
    KEY_COOKIE,
    SHOPPER_COOKIE,
    TICKET_COOKIE,
    channel_of,
    credentials,
)

TOKEN = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.", min_size=1)
COOKIE_NAMES = st.sampled_from([SHOPPER_COOKIE, TICKET_COOKIE, "other", "fd_key"])


def request(headers: list[tuple[bytes, bytes]]) -> Request[Any, Any, Any]:
    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers, "state": {}}
    return Request(scope)  # type: ignore[arg-type]


def litestar_bearer(r: Request[Any, Any, Any]) -> str | None:
    """The bearer token as Litestar's header map gives it ("" when the header is Bearer
    but names no token: sent, and wrong)."""
    scheme, _, value = r.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def litestar_tokens(r: Request[Any, Any, Any]) -> list[str]:
    """What `Credentials.customer_tokens` must give, from Litestar's maps: a bearer alone, if sent."""
    sent = litestar_bearer(r)
    if sent is not None:
        return [sent]
    given = [r.cookies.get(SHOPPER_COOKIE), r.cookies.get(TICKET_COOKIE)]
    return [t for t in given if t]


@given(
    auths=st.lists(
        st.tuples(st.sampled_from(["Bearer", "bearer", "Basic"]), TOKEN | st.just(" ")),
        max_size=2,
    ),
    cookies=st.lists(st.tuples(COOKIE_NAMES, TOKEN | st.just("")), max_size=5),
    auth_first=st.booleans(),
)
def test_customer_tokens_match_litestars_parsing(
    auths: list[tuple[str, str]], cookies: list[tuple[str, str]], auth_first: bool
) -> None:
    headers: list[tuple[bytes, bytes]] = [(b"host", b"x")]
    cookie = [(b"cookie", "; ".join(f"{k}={v}" for k, v in cookies).encode())] if cookies else []
    authorization = [(b"authorization", f"{s} {t}".encode()) for s, t in auths]
    headers += authorization + cookie if auth_first else cookie + authorization
    r = request(headers)
    sent = credentials(r.scope)
    assert sent.bearer == litestar_bearer(r)
    assert sent.customer_tokens() == litestar_tokens(r)
    expected = litestar_bearer(r)
    if expected is None:
        expected = r.cookies.get(TICKET_COOKIE) or None
    assert sent.token(TICKET_COOKIE) == expected
    for name in (SHOPPER_COOKIE, TICKET_COOKIE, KEY_COOKIE):
        assert sent.cookie(name) == (r.cookies.get(name) or None)


def test_cookies_split_over_several_headers_are_all_read() -> None:
    r = request([(b"cookie", b"other=1"), (b"cookie", f"{TICKET_COOKIE}=t.k".encode())])
    assert credentials(r.scope).customer_tokens() == ["t.k"]


def test_the_first_api_key_header_counts_as_in_litestars_map() -> None:
    r = request([(b"x-api-key", b"fd_one"), (b"x-api-key", b"fd_two")])
    assert credentials(r.scope).api_key == r.headers.get("x-api-key") == "fd_one"


@pytest.mark.parametrize(
    ("sent", "channel"),
    [(None, "web"), (b"app", "app"), (b"APP", "app"), (b"fax", "web")]
    + [(staff, "web") for staff in (b"admin", b"store", b"phone", b"Admin")],
)
def test_a_shopper_names_only_a_shopper_channel(sent: bytes | None, channel: str) -> None:
    headers = [(b"x-fairdrop-channel", sent)] if sent is not None else []
    assert channel_of(request(headers)) == channel
