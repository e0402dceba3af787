"""Migrations: applied in order, each once, even when several processes start at once."""

from __future__ import annotations

import asyncio
import secrets

import asyncpg
import pytest

from service.infra import db
from service.infra.settings import Settings


@pytest.fixture
async def schema(base_settings: Settings):  # type: ignore[no-untyped-def]
    name = f"m_{secrets.token_hex(4)}"
    yield name
    con = await asyncpg.connect(base_settings.database_url)
    await con.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    await con.close()


async def test_concurrent_starters_apply_each_migration_once(
    base_settings: Settings, schema: str
) -> None:
    assert base_settings.database_url
    results = await asyncio.gather(
        *(db.migrate_url(base_settings.database_url, schema) for _ in range(6))
    )
    everything = [m.version for m in db.load_migrations()]
    applied = [v for r in results for v in r]
    assert sorted(applied) == sorted(everything), "each migration applied by exactly one starter"
    con = await asyncpg.connect(base_settings.database_url)
    try:
        rows = await con.fetch(f'SELECT version FROM "{schema}".schema_migrations ORDER BY version')
    finally:
        await con.close()
    assert [r["version"] for r in rows] == everything
    assert await db.migrate_url(base_settings.database_url, schema) == []


async def test_an_edited_migration_is_refused(base_settings: Settings, schema: str) -> None:
    assert base_settings.database_url
    await db.migrate_url(base_settings.database_url, schema)
    con = await asyncpg.connect(base_settings.database_url)
    try:
        await con.execute(f"UPDATE \"{schema}\".schema_migrations SET checksum = 'x'")
        with pytest.raises(RuntimeError, match="edited after it was applied"):
            await db.migrate(con, schema)
    finally:
        await con.close()


def test_schema_names_are_checked() -> None:
    with pytest.raises(ValueError, match="schema"):
        asyncio.run(db.migrate_url("postgresql://nowhere/x", 'bad"; DROP'))
