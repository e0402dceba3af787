"""The draw: a random order that anyone can check and nobody can choose.

Commit: when registration closes a 32-byte seed is drawn; `sha256(seed)` is
published, with the roster (the public ids verified by then) and its hash.
Draw: when the sale starts, everyone on the roster who checked in is ordered by
`HMAC-SHA256(seed, public id)`; then the seed is revealed with the ordered ids, so
anyone can recompute the order and check both hashes: a changed seed, a changed
order, an id slipped in from outside the roster, or an entrant added or dropped
(against the count the draw page states) all fail. Those who checked in
but were not on the roster (verified late) queue right after the drawn ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TypeVar

import msgspec

from service import errors, events, subjects
from service.deps import Deps
from service.infra.db import Conn, allow_long
from service.infra.keys import LaunchKeys
from service.store import queue as qstore

_T = TypeVar("_T")


class Commitment(msgspec.Struct, frozen=True):
    launch_id: str
    seed_hash: str
    roster_hash: str
    roster_size: int
    committed_at: datetime
    seed: str | None = None
    """Hex; published only after the draw."""
    revealed_at: datetime | None = None
    entrants: int | None = None


class PublishedDraw(msgspec.Struct, frozen=True):
    """What anyone needs to check the draw: `verify-draw` reads exactly this."""

    launch_id: str
    seed_hash: str
    roster_hash: str
    seed: str
    roster: list[str]
    """Every public id that could take part, sorted."""
    entrants: int
    """How many took part: the number the draw page and `GET /draw` state."""
    order: list[str]
    """Who took part (public ids, each on the roster), first in the queue first: the
    entrants sorted by their draw keys."""


_PLACE_CHUNK = 10_000  # ranks per HSET
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def _pads(seed: bytes) -> tuple[bytes, bytes]:
    """HMAC's inner and outer padded keys: HMAC-SHA256(seed, m) is
    `sha256(outer ‖ sha256(inner ‖ m))`."""
    key = (seed if len(seed) <= 64 else hashlib.sha256(seed).digest()).ljust(64, b"\0")
    return key.translate(_IPAD), key.translate(_OPAD)


def draw_keys(seed: bytes, public_ids: Sequence[str]) -> list[bytes]:
    """HMAC-SHA256(seed, public id) of each id, with the key's inner and outer pads
    hashed once instead of once per id (a third of the time for a million ids)."""
    inner, outer = (hashlib.sha256(pad) for pad in _pads(seed))
    keys = []
    for pid in public_ids:
        h = inner.copy()
        h.update(pid.encode())
        o = outer.copy()
        o.update(h.digest())
        keys.append(o.digest())
    return keys


def _sorted_by_key(seed: bytes, items: Sequence[_T], public_ids: Sequence[str]) -> list[_T]:
    """`items` in the order of their public ids' draw keys (stable, like `sorted`)."""
    keys = draw_keys(seed, public_ids)
    return [items[i] for i in sorted(range(len(items)), key=keys.__getitem__)]


def order(seed: bytes, public_ids: Iterable[str]) -> list[str]:
    """The drawn order of `public_ids` under `seed`."""
    ids = list(public_ids)
    return _sorted_by_key(seed, ids, ids)


def roster_hash(roster: list[str]) -> str:
    return hashlib.sha256("\n".join(roster).encode()).hexdigest()


def check(published: PublishedDraw, *, seed_hash: str | None = None) -> list[str]:
    """Problems with a published draw (empty when it checks out). `seed_hash` is the
    commitment as the checker saved it when registration closed, so the file is not
    the only witness of itself."""
    problems = []
    try:
        seed = bytes.fromhex(published.seed)
    except ValueError:
        return ["the seed is not hex"]
    if seed_hash is not None and seed_hash.strip().lower() != published.seed_hash.lower():
        problems.append(
            f"the seed hash you saved ({seed_hash.strip()}) is not the one in this record"
            f" ({published.seed_hash})"
        )
    if hashlib.sha256(seed).hexdigest() != published.seed_hash.lower():
        problems.append("sha256(seed) does not match the published commitment")
    if roster_hash(published.roster) != published.roster_hash:
        problems.append("the roster does not match its published hash")
    outsiders = set(published.order) - set(published.roster)
    if outsiders:
        problems.append(f"{len(outsiders)} id(s) in the order are not on the roster")
    if len(set(published.order)) != len(published.order):
        problems.append("an id appears twice")
    if len(published.order) != published.entrants:
        problems.append(
            f"the record says {published.entrants} took part, but its order holds"
            f" {len(published.order)}"
        )
    expected = order(seed, published.order)
    if expected != published.order:
        pairs = zip(expected, published.order, strict=True)
        at = next(i for i, (want, got) in enumerate(pairs) if want != got)
        problems.append(
            f"the list is not in the order the seed gives (first difference at place {at + 1})"
        )
    return problems


async def commit(deps: Deps, launch_id: str, *, actor: str = "system") -> Commitment:
    """Draw and store the seed, publish its hash; once per launch (later calls return it)."""
    seed = secrets.token_bytes(32)
    async with deps.pool.acquire() as con, con.transaction():
        await allow_long(con, deps.settings)  # the roster: a million ids
        roster = sorted(
            r["public_id"]
            for r in await con.fetch(
                "SELECT public_id FROM registrations"
                " WHERE launch_id = $1 AND verified_at IS NOT NULL",
                launch_id,
            )
        )
        inserted = await con.fetchval(
            "INSERT INTO draws (launch_id, seed_hash, seed, roster, roster_hash)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (launch_id) DO NOTHING"
            " RETURNING launch_id",
            launch_id,
            hashlib.sha256(seed).hexdigest(),
            seed,
            roster,
            roster_hash(roster),
        )
        if inserted is not None:
            await events.record(
                con,
                launch_id=launch_id,
                actor=actor,
                channel="system",
                kind="draw.committed",
                subject=subjects.launch(launch_id),
                data={"seed_hash": hashlib.sha256(seed).hexdigest(), "roster": len(roster)},
            )
    return await commitment(deps, launch_id)


async def commitment(deps: Deps, launch_id: str) -> Commitment:
    row = await deps.pool.fetchrow(
        "SELECT seed_hash, roster_hash, cardinality(roster) AS roster_size, committed_at,"
        " seed, revealed_at, entrants FROM draws WHERE launch_id = $1",
        launch_id,
    )
    if row is None:
        raise errors.NotFound("This launch has no draw yet.")
    revealed = row["revealed_at"] is not None
    return Commitment(
        launch_id=launch_id,
        seed_hash=row["seed_hash"],
        roster_hash=row["roster_hash"],
        roster_size=row["roster_size"],
        committed_at=row["committed_at"],
        seed=bytes(row["seed"]).hex() if revealed else None,
        revealed_at=row["revealed_at"],
        entrants=row["entrants"],
    )


async def published(deps: Deps, launch_id: str) -> PublishedDraw:
    """The revealed draw with its ordered list, or `NotFound` before the reveal."""
    c = await commitment(deps, launch_id)
    if c.seed is None:
        raise errors.NotFound("The draw has not been made yet; only its commitment is public.")
    rows = await deps.pool.fetch(
        "SELECT r.public_id FROM draws d, unnest(d.drawn) WITH ORDINALITY AS o(id, n)"
        " JOIN registrations r ON r.id = o.id WHERE d.launch_id = $1 ORDER BY o.n",
        launch_id,
    )
    roster = await deps.pool.fetchval("SELECT roster FROM draws WHERE launch_id = $1", launch_id)
    return PublishedDraw(
        launch_id=launch_id,
        seed_hash=c.seed_hash,
        roster_hash=c.roster_hash,
        seed=c.seed,
        roster=list(roster),
        entrants=c.entrants or 0,
        order=[r["public_id"] for r in rows],
    )


# The draw in one statement. The draw set ($2, registration ids in arrival order) is split
# into those on the roster, ordered by HMAC-SHA256(seed, public id) (ties in arrival order,
# as `order`'s stable sort), and the rest in arrival order. Postgres hashes and sorts a
# little slower than Python, but then nobody ships a million public ids and the roster to
# Python (at 1M that, with the Python set and dict built from it, was half of the draw).
# It only reads: a statement that writes never runs in parallel.
_DRAW = """
WITH entrant AS (
    SELECT m.id, m.n, e.public_id
    FROM unnest($2::bigint[]) WITH ORDINALITY AS m (id, n)
    LEFT JOIN (
        SELECT r.id, r.public_id FROM registrations r
        JOIN unnest((SELECT roster FROM draws WHERE launch_id = $1)) AS roster (public_id)
        USING (public_id)
        WHERE r.launch_id = $1
    ) AS e ON e.id = m.id
), split AS (
    SELECT
        coalesce(array_agg(id ORDER BY
            sha256($4::bytea || sha256($3::bytea || convert_to(public_id, 'UTF8'))), n)
            FILTER (WHERE public_id IS NOT NULL), '{}') AS ranked,
        coalesce(array_agg(id ORDER BY n) FILTER (WHERE public_id IS NULL), '{}') AS outside
    FROM entrant
)
SELECT ranked, outside FROM split
"""
# The planner guesses 10 rows for an unnested array, so it would probe the public id
# index once per roster entry (7 s for a million) instead of hashing: no nested loops.
# Written as a subquery, the roster's join may run in parallel workers (5.8 s -> 3 s at 1M).
# Sorts and hashes of a million rows stay in memory; JIT costs more than it saves here.
_DRAW_SETTINGS = (
    "SET LOCAL enable_nestloop = off; SET LOCAL jit = off; SET LOCAL work_mem = '256MB'"
)


async def drawn_order(
    con: Conn, launch_id: str, seed: bytes, members: list[int]
) -> tuple[list[int], list[int]]:
    """Order the draw set `members` (registration ids, arrival order) in Postgres:
    (drawn order, the rest in arrival order). Run it in a transaction: it sets planner
    settings for the rest of it."""
    inner, outer = _pads(seed)
    await con.execute(_DRAW_SETTINGS)
    row = await con.fetchrow(_DRAW, launch_id, members, inner, outer)
    assert row is not None
    return list(row["ranked"]), list(row["outside"])


async def place_ranks(deps: Deps, keys: LaunchKeys, ranked: list[int]) -> None:
    """Write each ranked registration's rank to the launch's qpos hash."""

    await qstore.place_ranks(deps.scripts, keys, ranked, chunk=_PLACE_CHUNK)


async def run(deps: Deps, launch_id: str, *, actor: str = "system") -> int:
    """Order the pre-queue, give everyone their rank, reveal the seed. Returns entrants."""
    keys = deps.keys(launch_id)
    began = await qstore.draw_begin(deps.scripts, keys)
    if not began.begun:
        raise errors.Conflict(f"The queue is not waiting for a draw (it is {began.phase}).")
    seed = await deps.pool.fetchval("SELECT seed FROM draws WHERE launch_id = $1", launch_id)
    if seed is None:
        await commit(deps, launch_id, actor=actor)  # registration never closed: commit now
        seed = await deps.pool.fetchval("SELECT seed FROM draws WHERE launch_id = $1", launch_id)
    seed = bytes(seed)
    # The draw set in arrival order: those off the roster queue behind, in that order.
    members = await qstore.drawset(deps.scripts, keys)
    async with deps.pool.acquire() as con, con.transaction():
        await allow_long(con, deps.settings)  # a million entrants: seconds
        ranked, outside = await drawn_order(con, launch_id, seed, members)
        # Redis takes the ranks while Postgres takes the places; the reveal commits only
        # once Redis holds every rank (as when the two ran one after the other).
        placing = asyncio.ensure_future(place_ranks(deps, keys, ranked))
        try:
            # The drawn order as one array (registration ids, rank = index): a million
            # rows with their own indexes and foreign key cost ten times as long.
            await con.execute(
                "UPDATE draws SET revealed_at = now(), entrants = $2, drawn = $3"
                " WHERE launch_id = $1",
                launch_id,
                len(ranked),
                ranked,
            )
            await events.record(
                con,
                launch_id=launch_id,
                actor=actor,
                channel="system",
                kind="draw.revealed",
                subject=subjects.launch(launch_id),
                data={"entrants": len(ranked), "seed": seed.hex()},
            )
            await placing
        finally:
            placing.cancel()  # if Postgres failed first; a no-op once done
            await asyncio.gather(placing, return_exceptions=True)
    await qstore.draw_finish(deps.scripts, keys, entrants=len(ranked), outside=outside)
    return len(ranked)
