"""Shopper tokens (signed, bound, expiring) and e-mail normalisation."""

from __future__ import annotations

import base64
import hashlib
import hmac

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.auth.tokens import ShopperClaims, TokenSigner
from service.errors import Unauthorized
from service.queue import emails

NOW = 1_800_000_000_000


def test_a_token_verifies_for_its_launch_only() -> None:
    signer = TokenSigner("k1")
    token = signer.sign(ShopperClaims("launch-a", 42, NOW + 1000))
    assert signer.verify(token, launch_id="launch-a", now_ms=NOW).registration_id == 42
    with pytest.raises(Unauthorized, match="another launch"):
        signer.verify(token, launch_id="launch-b", now_ms=NOW)


@given(st.text(min_size=1), st.binary(max_size=300))
def test_the_tag_is_keyed_blake2b_of_the_payload_whatever_came_before(
    secret: str, other: bytes
) -> None:
    # Signing one payload must not leak into the next.
    signer = TokenSigner(secret)
    signer._mac(other)
    token = signer.sign(ShopperClaims("L1", 7, 2**40))
    body, mac = token.split(".")
    assert "=" not in token
    payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    key = hashlib.sha256(b"fairdrop-token:" + secret.encode()).digest()
    expected = hashlib.blake2b(payload, key=key, digest_size=16).digest()
    assert base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4)) == expected
    assert TokenSigner(secret).verify(token, launch_id="L1", now_ms=0).registration_id == 7


@given(st.text(min_size=1), st.integers(min_value=1, max_value=2**40))
def test_a_token_tagged_with_hmac_sha256_is_not_genuine(secret: str, reg: int) -> None:
    """Only keyed BLAKE2b tags open: another MAC under the same key is a forgery."""
    payload = msgspec.msgpack.encode(ShopperClaims("L1", reg, 2**40))
    key = hashlib.sha256(b"fairdrop-token:" + secret.encode()).digest()

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    other = f"{b64(payload)}.{b64(hmac.digest(key, payload, 'sha256'))}"
    with pytest.raises(Unauthorized, match="not genuine"):
        TokenSigner(secret).verify(other, launch_id="L1", now_ms=0)


def test_expired_forged_and_malformed_tokens_are_refused() -> None:
    signer = TokenSigner("k1")
    token = signer.sign(ShopperClaims("l", 1, NOW + 1000))
    with pytest.raises(Unauthorized, match="expired"):
        signer.verify(token, launch_id="l", now_ms=NOW + 1000)
    with pytest.raises(Unauthorized, match="not genuine"):
        TokenSigner("other-secret").verify(token, launch_id="l", now_ms=NOW)
    body, mac = token.split(".")
    forged = TokenSigner("k1").sign(ShopperClaims("l", 2, NOW + 1000)).split(".")[0] + "." + mac
    with pytest.raises(Unauthorized, match="not genuine"):
        signer.verify(forged, launch_id="l", now_ms=NOW)
    # A tag spelled another way (padded, standard alphabet) is not the canonical one.
    for respelled in (f"{body}.{mac}==", f"{body}.{mac.replace('-', '+').replace('_', '/')}"):
        if respelled != token:
            with pytest.raises(Unauthorized, match="not genuine"):
                signer.verify(respelled, launch_id="l", now_ms=NOW)
    for junk in ("", "abc", "a.b.c", "!!!.???", body, "é\udcff.x", f"{body}.\udcff"):
        with pytest.raises(Unauthorized):
            signer.verify(junk, launch_id="l", now_ms=NOW)


@given(st.binary(max_size=80))
def test_random_bytes_never_verify(junk: bytes) -> None:
    signer = TokenSigner("k1")
    with pytest.raises(Unauthorized):
        signer.verify(junk.hex() + "." + junk.hex(), launch_id="l", now_ms=NOW)


@pytest.mark.parametrize(
    ("typed", "normal"),
    [
        ("  Ada@Example.COM ", "ada@example.com"),
        ("ada+launch@example.com", "ada@example.com"),
        ("A.da.Love+x@gmail.com", "adalove@gmail.com"),
        ("a.da@googlemail.com", "ada@gmail.com"),
        ("a.da@example.com", "a.da@example.com"),
    ],
)
def test_normalisation_for_duplicates(typed: str, normal: str) -> None:
    assert emails.normalize(typed) == normal


@pytest.mark.parametrize(
    "bad", ["", "ada", "ada@", "@example.com", "a b@example.com", "ada@localhost"]
)
def test_invalid_addresses(bad: str) -> None:
    assert not emails.is_valid(bad)


def test_valid_addresses() -> None:
    assert emails.is_valid("ada.lovelace+drop@mail.example.co.uk")
