"""API keys for staff, agents, operators and admins, stored hashed.

A key reads `fd_<id>_<secret>`; Postgres keeps only SHA-256 of the secret (the
secret is 256 random bits, so a slow hash would add nothing). Every request reads its
key's row, so a revoked key is refused at once by every worker. Events name a key as
`key:<id>`; people are shown its label instead (`display_names`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal

import msgspec
from asyncpg import Record

from service import events
from service.errors import Forbidden, NotFound, Unauthorized
from service.infra.db import Conn, Pool

Role = Literal["admin", "operator", "staff", "agent"]
ROLES: tuple[Role, ...] = ("admin", "operator", "staff", "agent")
USED_EVERY = timedelta(minutes=1)
"""`last_used_at` is written at most this often a key: a write a minute, not a request."""
_ROLE_WORDS: dict[str, str] = {
    "admin": "an administrator",
    "operator": "operations",
    "agent": "customer service",
}


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


class KeyInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A key as it is listed: never its secret."""

    id: str
    label: str
    role: Role
    store_id: str | None
    launch_id: str | None
    created_at: datetime
    last_used_at: datetime | None
    """To the minute: written at most once a minute."""
    revoked_at: datetime | None


_INFO = "id, label, role, store_id, launch_id, created_at, last_used_at, revoked_at"


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


async def create_key(
    pool: Pool,
    role: Role,
    *,
    label: str = "",
    store_id: str | None = None,
    launch_id: str | None = None,
    actor: str = "cli",
    channel: str = "admin",
) -> str:
    """Create a key and return it in full; it is never shown again."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    async with pool.acquire() as con, con.transaction():
        await con.execute(
            "INSERT INTO api_keys (id, secret_hash, role, store_id, launch_id, label)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            key_id,
            _hash(secret),
            role,
            store_id,
            launch_id,
            label,
        )
        await events.record(
            con,
            launch_id=launch_id,
            actor=actor,
            channel=channel,
            kind="key.created",
            subject=f"key:{key_id}",
            data={"role": role, "store": store_id, "label": label},
        )
    return f"fd_{key_id}_{secret}"


async def authenticate(pool: Pool, presented: str, now: datetime | None = None) -> Principal:
    """The principal of a genuine, unrevoked key; a request (`now` given) notes its use."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != "fd":
        raise Unauthorized("The API key is malformed.")
    row = await pool.fetchrow(_ACTIVE_KEY, parts[1])
    if row is None or not hmac.compare_digest(bytes(row["secret_hash"]), _hash(parts[2])):
        raise Unauthorized("The API key is unknown or revoked.")
    return await _noted(pool, row, now)


async def principal_of(pool: Pool, key_id: str, now: datetime | None = None) -> Principal:
    """Who key `key_id` speaks for, while it is not revoked: for a signed session that
    names the key (the staff pages' cookie) rather than carrying its secret."""
    row = await pool.fetchrow(_ACTIVE_KEY, key_id)
    if row is None:
        raise Unauthorized("The API key is unknown or revoked.")
    return await _noted(pool, row, now)


async def _noted(pool: Pool, row: Record, now: datetime | None) -> Principal:
    """The key's principal, its use at `now` noted at most once a minute (`USED_EVERY`)."""
    used: datetime | None = row["last_used_at"]
    if now is not None and (used is None or now - used >= USED_EVERY):
        # Workers racing here write once: the second finds the row fresh and skips it.
        await pool.execute(
            "UPDATE api_keys SET last_used_at = $2 WHERE id = $1"
            " AND (last_used_at IS NULL OR last_used_at <= $2::timestamptz - $3::interval)",
            row["id"],
            now,
            USED_EVERY,
        )
    return Principal(row["id"], row["role"], row["store_id"], row["launch_id"])


_ACTIVE_KEY = (
    "SELECT id, secret_hash, role, store_id, launch_id, last_used_at FROM api_keys"
    " WHERE id = $1 AND revoked_at IS NULL"
)


async def list_keys(pool: Pool) -> list[KeyInfo]:
    """Every key, oldest first, revoked ones included (with `revoked_at`)."""
    rows = await pool.fetch(f"SELECT {_INFO} FROM api_keys ORDER BY created_at, id")
    return [KeyInfo(**dict(r)) for r in rows]


async def revoke_key(
    pool: Pool, key_id: str, *, now: datetime, actor: str, channel: str = "admin"
) -> KeyInfo:
    """Revoke a key: refused by every worker from its next request. Revoking it again
    changes nothing (and records nothing); an unknown id is `NotFound`."""
    async with pool.acquire() as con, con.transaction():
        row = await con.fetchrow(
            f"UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL"
            f" RETURNING {_INFO}",
            key_id,
            now,
        )
        if row is None:
            row = await con.fetchrow(f"SELECT {_INFO} FROM api_keys WHERE id = $1", key_id)
            if row is None:
                raise NotFound(f"No API key {key_id!r}.")
            return KeyInfo(**dict(row))
        await events.record(
            con,
            launch_id=row["launch_id"],
            actor=actor,
            channel=channel,
            kind="key.revoked",
            subject=f"key:{key_id}",
            data={"role": row["role"], "store": row["store_id"], "label": row["label"]},
        )
        return KeyInfo(**dict(row))


def key_name(label: str, role: str, store: str | None) -> str:
    """A key as people are shown it: its label, else "staff at <store>" (or its role)."""
    if label.strip():
        return label.strip()
    if role == "staff":
        return f"staff at {store}"
    return _ROLE_WORDS.get(role, role)


async def key_labels(con: Conn | Pool, actors: Iterable[str]) -> dict[str, str]:
    """`key:<id>` actors among `actors` → their keys' labels (only keys that have one)."""
    return {a: label for a, (label, _, _) in (await _keys_of(con, actors, None)).items() if label}


async def key_names(con: Conn | Pool, actors: Iterable[str], launch_id: str) -> dict[str, str]:
    """`key:<id>` actors among `actors` → how people are shown each key (`key_name`)."""
    keys = await _keys_of(con, actors, launch_id)
    return {actor: key_name(*key) for actor, key in keys.items()}


async def _keys_of(
    con: Conn | Pool, actors: Iterable[str], launch_id: str | None
) -> dict[str, tuple[str, str, str | None]]:
    """`key:<id>` → (label, role, store name) for the key actors among `actors`."""
    ids = sorted({a[4:] for a in actors if a and a.startswith("key:")})
    if not ids:
        return {}
    rows = await con.fetch(
        "SELECT k.id, k.label, k.role, coalesce(s.name, k.store_id) AS store FROM api_keys k"
        " LEFT JOIN stores s ON s.launch_id = $2 AND s.id = k.store_id WHERE k.id = ANY($1)",
        ids,
        launch_id,
    )
    return {f"key:{r['id']}": (r["label"].strip(), r["role"], r["store"]) for r in rows}


async def display_names(
    con: Conn | Pool, actors: Iterable[str], launch_id: str | None = None
) -> dict[str, str]:
    """`key:<id>` actors among `actors` → the name people see (`key_name`), with a staff
    key's store named as `launch_id` names it. Other actors are not in the result."""
    keys = await _keys_of(con, actors, launch_id)
    return {actor: key_name(*key) for actor, key in keys.items()}
