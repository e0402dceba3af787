"""The schema fuzzer: schemathesis over every operation of `/schema/openapi.json`, with
a credential for every role, hostile strings (NUL bytes included), asserting that no
request gets a 5xx and that every field error names a field the operation has.

    python -m tests.fuzz [--examples N] [--max-time SECONDS] [--seed N] [schemathesis options]

It uses the servers `DATABASE_URL` and `REDIS_URL` name (else embedded ones, as the
tests do) in a Postgres schema and Redis key prefix of its own, seeds two launches (`fz`
selling, with holds and reservations; `fza` a draft for the operations' API), starts the
app under granian on a free port (`tests/serve.py`), writes a `schemathesis.toml` that
gives each operation its role's credential and biases ids towards the seeded ones, and
runs schemathesis. The exit status is schemathesis's: 0 when nothing failed. Everything
it made is dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import asyncpg
import msgspec

from service.auth.apikeys import create_key
from service.auth.tokens import ShopperClaims
from service.clock import SystemClock
from service.customers import links
from service.deps import Deps
from service.infra import db
from service.infra.redis import create_redis
from service.infra.settings import Settings, from_env
from service.pickup.windows import now_of
from service.stock import confirm, holds
from service.stock.codes import format_code
from tests.serve import selling_launch, serving, stocked_launch, tickets_for

HERE = Path(__file__).parent
SHOPPER_TAGS = ("shopper", "self-service", "waiting room", "registration")
SHOPPER_ONLY = "^(checkIn|lotteryResult)$"  # a shopper token's, not a queue ticket's


@dataclass
class World:
    """What the fuzzer's requests are biased towards: ids and credentials that exist."""

    keys: dict[str, str]  # role -> API key
    shopper: str  # a shopper token (check-in)
    ticket: str  # a queue ticket, admitted (holds, and everything a shopper does)
    manage: str  # a self-service link token
    holds: list[str]
    reservations: list[int]
    codes: list[str]
    registrations: list[int]


async def seed(deps: Deps) -> World:
    regs = await selling_launch(
        deps, "fz", stores=("S1", "S2"), units=50, registrations=12, limit=3
    )
    await stocked_launch(deps, "fza", registrations=3)
    now = now_of(deps)
    await deps.pool.execute(
        "UPDATE launches SET pickup_starts_at = $2, pickup_ends_at = $3 WHERE id = $1",
        "fz",
        now - timedelta(days=1),
        now + timedelta(days=30),
    )
    [ticket] = await tickets_for(deps, "fz", regs[:1])
    # The fuzzer's shopper (regs[0]) holds three units and confirms one; others hold and
    # confirm too (theirs are 404 to the shopper, and everyone's to the staff and agents).
    owners = [regs[0], regs[0], regs[0], *regs[1:6]]
    made = [await holds.reserve(deps, "fz", r, "S1", "K1") for r in owners]
    done = [await confirm.confirm(deps, "fz", h.registration_id, h.hold_id) for h in made[2:6]]
    later = deps.clock.now_ms() + 86_400_000
    return World(
        keys={
            role: await create_key(deps.pool, role, store_id="S1" if role == "staff" else None)
            for role in ("admin", "staff", "agent")
        },
        shopper=deps.signer.sign(ShopperClaims("fz", regs[0], later)),
        ticket=ticket,
        manage=links.manage_token(deps, "fz", regs[0]),
        holds=[h.hold_id for h in made],
        reservations=[r.id for r in done],
        codes=[c for r in done for c in (r.code, format_code(r.code))],
        registrations=regs,
    )


def config(world: World, base: str, examples: int) -> str:
    """schemathesis.toml: credentials per operation, ids biased towards the seeded ones."""

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    dictionaries = {
        "launches": ["fz"],
        "admin_launches": ["fza", "fz"],
        "holds": world.holds,
        "reservations": world.reservations,
        "codes": world.codes,
        "registrations": world.registrations,
        "stores": ["S1", "S2"],
        "skus": ["K1"],
        "tokens": [world.manage],
    }
    bound = {
        "launch_id": "launches",
        "hold_id": "holds",
        "reservation_id": "reservations",
        "code": "codes",
        "registration_id": "registrations",
        "store_id": "stores",
        "sku_id": "skus",
        "token": "tokens",
        "body.store_id": "stores",
        "body.sku_id": "skus",
        "body.registration_id": "registrations",
    }
    operations = [
        ({"include-tag": "admin"}, bearer(world.keys["admin"]), {"launch_id": "admin_launches"}),
        ({"include-tag": "pickup desk"}, bearer(world.keys["staff"]), {}),
        ({"include-tag": "agent console"}, bearer(world.keys["agent"]), {}),
        *(
            (
                {"include-tag": tag, "exclude-operation-id-regex": SHOPPER_ONLY},
                bearer(world.ticket),
                {},
            )
            for tag in SHOPPER_TAGS
        ),
        ({"include-operation-id-regex": SHOPPER_ONLY}, bearer(world.shopper), {}),
    ]
    lines = [
        f"base-url = {json.dumps(base)}",
        f"hooks = {json.dumps(str(HERE / 'checks.py'))}",
        "request-timeout = 60",  # an allocation of a million units takes a while
        "max-stream-events = 3",  # the queue's event stream never ends by itself
        "[generation]",
        f"max-examples = {examples}",
        "allow-x00 = true",  # NUL bytes, which Postgres text cannot hold
        "[checks]",
        "enabled = false",
        "not_a_server_error.enabled = true",
        "fields_are_real.enabled = true",
        "[parameters]",
        *(
            f"{json.dumps(k)} = {{ dictionary = {json.dumps(v)}, probability = 0.7 }}"
            for k, v in bound.items()
        ),
        "[dictionaries]",
        *(f"{k} = {{ values = {json.dumps(v)} }}" for k, v in dictionaries.items()),
    ]
    for match, headers, params in operations:
        lines += ["[[operations]]", *(f"{k} = {json.dumps(v)}" for k, v in match.items())]
        lines.append(
            "headers = { "
            + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in headers.items())
            + " }"
        )
        for k, v in params.items():
            lines.append(f"parameters.{k} = {{ dictionary = {json.dumps(v)}, probability = 0.8 }}")
    return "\n".join(lines) + "\n"


async def _prepare(settings: Settings) -> World:
    assert settings.database_url is not None and settings.redis_url is not None
    await db.migrate_url(settings.database_url, settings.db_schema)
    pool = await db.create_pool(settings, min_size=1, max_size=4)
    redis = create_redis(settings.redis_url)
    try:
        return await seed(Deps(settings=settings, pool=pool, redis=redis, clock=SystemClock()))
    finally:
        await redis.aclose()
        await pool.close()


async def _drop(settings: Settings) -> None:
    assert settings.database_url is not None and settings.redis_url is not None
    con = await asyncpg.connect(settings.database_url)
    try:
        await con.execute(f'DROP SCHEMA IF EXISTS "{settings.db_schema}" CASCADE')
    finally:
        await con.close()
    redis = create_redis(settings.redis_url)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{settings.redis_prefix}*", count=1000)]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


def fuzz(settings: Settings, examples: int, options: list[str]) -> int:
    """Seed, serve and fuzz in a schema and key prefix of this run's own; drop them after."""
    tag = secrets.token_hex(4)
    settings = msgspec.structs.replace(
        settings, db_schema=f"fz_{tag}", redis_prefix=f"fz{tag}:", secret=secrets.token_hex(16)
    )
    os.environ["FAIRDROP_RATE_LIMITS"] = "0"  # the server's: limits would only answer 429
    try:
        world = asyncio.run(_prepare(settings))
        with serving(settings) as url, tempfile.TemporaryDirectory() as folder:
            toml = Path(folder) / "schemathesis.toml"
            toml.write_text(config(world, url, examples))
            schemathesis = Path(sys.executable).parent / "schemathesis"
            command = [str(schemathesis), "--config-file", str(toml), "run", "--no-color"]
            command += [f"{url}/schema/openapi.json", *options]
            print("fuzz:", " ".join(command[3:]), flush=True)
            return subprocess.run(command, check=False, cwd=folder).returncode
    finally:
        asyncio.run(_drop(settings))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--examples", type=int, default=30, help="examples per operation (30)")
    parser.add_argument("--max-time", type=int, help="spend this many seconds, then stop")
    parser.add_argument("--seed", type=int, help="replay a run's seed")
    parser.add_argument("--workers", default="1", help="schemathesis workers (1)")
    args, options = parser.parse_known_args(argv)  # the rest goes to `schemathesis run`
    options += ["--workers", args.workers]
    options += ["--max-time", str(args.max_time)] if args.max_time else []
    options += ["--seed", str(args.seed)] if args.seed is not None else []
    settings = from_env()
    if settings.database_url and settings.redis_url:
        return fuzz(settings, args.examples, options)
    from service.infra.embedded import services

    with services(settings) as resolved:
        return fuzz(resolved, args.examples, options)


if __name__ == "__main__":
    sys.exit(main())
