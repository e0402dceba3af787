"""Signing in to the staff pages: a session naming an API key, and one-time links.

The pages keep a **session** in an HttpOnly, SameSite=Strict cookie: a signed token
(the app secret, as shopper tokens) naming the key and when the session ends. It never
carries the key's secret, so the browser holds nothing that works as an API key after
the session ends, and revoking the key ends every session made with it (each request
looks the key up).

A **sign-in link** (`/staff/login?token=…`) signs in once without typing a key: the
token is 256 random bits, Postgres keeps only its SHA-256, and it works once, for an
hour, while its key is not revoked. Opening it shows a button; only the POST it sends
redeems it, so a link previewer or a page that merely loads the URL cannot use it up,
and the long-lived key itself never appears in a URL, a browser's history or a log.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import msgspec

from service.auth.apikeys import Principal, authenticate, principal_of
from service.deps import Deps
from service.errors import Unauthorized
from service.pickup.windows import now_of

SESSION_SECONDS = 12 * 3600  # one shift
LINK_SECONDS = 3600
SESSION_KIND = "staff-session"


class SessionClaims(msgspec.Struct, frozen=True, array_like=True):
    scope: str
    """Unused (sessions span launches); first, as every token's launch id is."""
    key_id: str
    expires_ms: int
    kind: str = SESSION_KIND


_sessions = msgspec.msgpack.Decoder(SessionClaims)


def _now(deps: Deps) -> datetime:
    return datetime.fromtimestamp(deps.clock.now_ms() / 1000, tz=UTC)


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def session_token(deps: Deps, who: Principal) -> str:
    """A session for `who`, ending after `SESSION_SECONDS`."""
    expires = deps.clock.now_ms() + SESSION_SECONDS * 1000
    return deps.signer.sign(SessionClaims("", who.key_id, expires))


async def session_principal(deps: Deps, token: str) -> Principal:
    """Who a genuine, unexpired session speaks for, while its key is not revoked."""
    claims = deps.signer.open(token, _sessions, "sign-in session")
    if claims.kind != SESSION_KIND:
        raise Unauthorized("This is not a sign-in session.")
    if claims.expires_ms <= deps.clock.now_ms():
        raise Unauthorized("The sign-in session has ended: sign in again.")
    return await principal_of(deps.pool, claims.key_id, now_of(deps))


async def create_link(deps: Deps, key: str, *, seconds: int = LINK_SECONDS) -> str:
    """A one-time sign-in token for API key `key` (checked first), valid for `seconds`."""
    who = await authenticate(deps.pool, key, now_of(deps))
    token = secrets.token_urlsafe(32)
    await deps.pool.execute(
        "INSERT INTO signin_links (token_hash, key_id, expires_at) VALUES ($1, $2, $3)",
        _hash(token),
        who.key_id,
        _now(deps) + timedelta(seconds=seconds),
    )
    return token


_LINK_KEY = """
SELECT k.id, k.role, k.store_id, k.launch_id FROM signin_links l
JOIN api_keys k ON k.id = l.key_id AND k.revoked_at IS NULL
WHERE l.token_hash = $1 AND l.used_at IS NULL AND l.expires_at > $2
"""

_REDEEM = """
UPDATE signin_links l SET used_at = $2 FROM api_keys k
WHERE l.token_hash = $1 AND l.used_at IS NULL AND l.expires_at > $2
  AND k.id = l.key_id AND k.revoked_at IS NULL
RETURNING k.id, k.role, k.store_id, k.launch_id
"""


async def link_principal(deps: Deps, token: str) -> Principal:
    """Who an unused, unexpired link signs in as, without using it up."""
    row = await deps.pool.fetchrow(_LINK_KEY, _hash(token), _now(deps))
    if row is None:
        raise await _refusal(deps, token)
    return Principal(row["id"], row["role"], row["store_id"], row["launch_id"])


async def redeem_link(deps: Deps, token: str) -> Principal:
    """Use the link up (once, whatever races it) and return who it signs in as."""
    row = await deps.pool.fetchrow(_REDEEM, _hash(token), _now(deps))
    if row is None:
        raise await _refusal(deps, token)
    return Principal(row["id"], row["role"], row["store_id"], row["launch_id"])


async def _refusal(deps: Deps, token: str) -> Unauthorized:
    row = await deps.pool.fetchrow(
        "SELECT l.used_at, l.expires_at, k.revoked_at FROM signin_links l"
        " JOIN api_keys k ON k.id = l.key_id WHERE l.token_hash = $1",
        _hash(token),
    )
    if row is None:
        return Unauthorized("This sign-in link is not valid.")
    if row["revoked_at"] is not None:
        return Unauthorized("The key of this sign-in link has been revoked.")
    if row["used_at"] is not None:
        return Unauthorized("This sign-in link has been used already: each works once.")
    return Unauthorized("This sign-in link has expired.")
