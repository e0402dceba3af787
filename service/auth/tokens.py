"""Signed tokens: shopper links bound to (launch, registration) and queue tickets.

Format: base64url(msgpack payload) "." base64url(HMAC-SHA256(secret, payload)).
Every claims struct starts with the launch id; its `kind` keeps one sort of token
from being replayed as another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import TypeVar

import msgspec

from service.errors import Unauthorized


class ShopperClaims(msgspec.Struct, frozen=True, array_like=True):
    launch_id: str
    registration_id: int
    expires_ms: int
    kind: str = "shopper"


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(ShopperClaims)
C = TypeVar("C", bound=msgspec.Struct)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    def __init__(self, secret: str) -> None:
        key = hashlib.sha256(b"fairdrop-token:" + secret.encode()).digest()
        # Keyed once: each MAC copies the keyed state instead of keying again, which
        # was half of what checking a ticket cost on every hold and status poll.
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def _mac(self, payload: bytes) -> bytes:
        mac = self._keyed.copy()
        mac.update(payload)
        return mac.digest()

    def sign(self, claims: msgspec.Struct) -> str:
        payload = _encoder.encode(claims)
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def open(self, token: str, decoder: msgspec.msgpack.Decoder[C], what: str = "token") -> C:
        """The claims of a genuine token (not yet checked for launch, kind or expiry)."""
        try:
            body, mac = token.split(".")
            payload = _unb64(body)
            given = _unb64(mac)
        except (ValueError, TypeError) as exc:
            raise Unauthorized(f"The {what} is malformed.") from exc
        if not hmac.compare_digest(given, self._mac(payload)):
            raise Unauthorized(f"The {what} is not genuine.")
        try:
            return decoder.decode(payload)
        except msgspec.DecodeError as exc:
            raise Unauthorized(f"The {what} is malformed.") from exc

    def verify(
        self, token: str, *, launch_id: str, now_ms: int, kind: str = "shopper"
    ) -> ShopperClaims:
        """The claims of a genuine, unexpired token for `launch_id`, else `Unauthorized`."""
        claims = self.open(token, _decoder, "shopper token")
        if claims.kind != kind:
            raise Unauthorized("This token is not a shopper token.")
        if claims.launch_id != launch_id:
            raise Unauthorized("This token belongs to another launch.")
        if claims.expires_ms <= now_ms:
            raise Unauthorized("The shopper token has expired.")
        return claims
