"""`fairdrop admin create-key | list-keys | revoke-key`."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime

from service.auth.apikeys import KeyInfo, create_key, list_keys, revoke_key
from service.cli._base import Subparsers, fail, resolved, with_deps
from service.deps import Deps
from service.infra.settings import Settings
from service.pickup.windows import now_of


def cmd_create_key(settings: Settings, args: argparse.Namespace) -> None:
    async def work(deps: Deps) -> None:
        key = await create_key(deps.pool, args.role, label=args.label, store_id=args.store)
        print(key)

    if (args.role == "staff") != (args.store is not None):
        fail("a staff key needs --store; other roles take none")
    with resolved(settings) as s:
        asyncio.run(with_deps(s, work))


KEY_COLUMNS = ("id", "label", "role", "store", "created", "last used", "revoked")


def key_rows(keys: list[KeyInfo]) -> list[tuple[str, ...]]:
    """The keys as `list-keys` prints them: one row a key, times to the minute (UTC)."""

    def at(when: datetime | None) -> str:
        return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if when else "-"

    return [
        (
            k.id,
            k.label or "-",
            k.role,
            k.store_id or "-",
            at(k.created_at),
            at(k.last_used_at),
            at(k.revoked_at),
        )
        for k in keys
    ]


def cmd_list_keys(settings: Settings, args: argparse.Namespace) -> None:
    async def work(deps: Deps) -> None:
        rows = [KEY_COLUMNS, *key_rows(await list_keys(deps.pool))]
        widths = [max(len(row[i]) for row in rows) for i in range(len(KEY_COLUMNS))]
        for row in rows:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())

    with resolved(settings) as s:
        asyncio.run(with_deps(s, work))


def cmd_revoke_key(settings: Settings, args: argparse.Namespace) -> None:
    async def work(deps: Deps) -> None:
        key = await revoke_key(deps.pool, args.id, now=now_of(deps), actor="cli")
        print(
            f"revoked {key.id} ({key.label or key.role}) at {key.revoked_at:%Y-%m-%d %H:%M:%S %Z}"
        )

    with resolved(settings) as s:
        asyncio.run(with_deps(s, work))


def add_commands(admin: Subparsers) -> None:
    key = admin.add_parser("create-key", help="create an API key and print it once")
    key.add_argument("--role", choices=["admin", "operator", "staff", "agent"], default="admin")
    key.add_argument("--store", default=None, help="the store a staff key is scoped to")
    key.add_argument("--label", default="")
    key.set_defaults(func=cmd_create_key)
    admin.add_parser(
        "list-keys", help="list API keys: id, label, role, store, created, last used, revoked"
    ).set_defaults(func=cmd_list_keys)
    revoke = admin.add_parser("revoke-key", help="revoke an API key (refused from now on)")
    revoke.add_argument("id", help="the key's id (the part after fd_, as list-keys shows it)")
    revoke.set_defaults(func=cmd_revoke_key)
