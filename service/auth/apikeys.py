"""API keys for staff, agents, operators and admins, stored hashed.

A key reads `fd_<id>_<secret>`; Postgres keeps only SHA-256 of the secret (the
secret is 256 random bits, so a slow hash would add nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Literal

import msgspec

from service.errors import Forbidden, Unauthorized
from service.infra.db import Pool

Role = Literal["admin", "operator", "staff", "agent"]
ROLES: tuple[Role, ...] = ("admin", "operator", "staff", "agent")


class Principal(msgspec.Struct, frozen=True):
    key_id: str
    role: Role
    store_id: str | None = None
    launch_id: str | None = None

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}"

    def require(self, *roles: Role) -> None:
        if self.role not in roles and self.role != "admin":
            raise Forbidden(f"This needs one of the roles: {', '.join(roles)}.")


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


async def create_key(
    pool: Pool,
    role: Role,
    *,
    label: str = "",
    store_id: str | None = None,
    launch_id: str | None = None,
) -> str:
    """Create a key and return it in full; it is never shown again."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    await pool.execute(
        "INSERT INTO api_keys (id, secret_hash, role, store_id, launch_id, label)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        key_id,
        _hash(secret),
        role,
        store_id,
        launch_id,
        label,
    )
    return f"fd_{key_id}_{secret}"


async def authenticate(pool: Pool, presented: str) -> Principal:
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != "fd":
        raise Unauthorized("The API key is malformed.")
    row = await pool.fetchrow(_ACTIVE_KEY, parts[1])
    if row is None or not hmac.compare_digest(bytes(row["secret_hash"]), _hash(parts[2])):
        raise Unauthorized("The API key is unknown or revoked.")
    return Principal(row["id"], row["role"], row["store_id"], row["launch_id"])


async def principal_of(pool: Pool, key_id: str) -> Principal:
    """Who key `key_id` speaks for, while it is not revoked: for a signed session that
    names the key (the staff pages' cookie) rather than carrying its secret."""
    row = await pool.fetchrow(_ACTIVE_KEY, key_id)
    if row is None:
        raise Unauthorized("The API key is unknown or revoked.")
    return Principal(row["id"], row["role"], row["store_id"], row["launch_id"])


_ACTIVE_KEY = (
    "SELECT id, secret_hash, role, store_id, launch_id FROM api_keys"
    " WHERE id = $1 AND revoked_at IS NULL"
)
