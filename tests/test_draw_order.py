"""The draw's order computed in Postgres is exactly `draw.order`, the reference that
`verify-draw` recomputes: same HMAC, same bytes of non-ASCII ids, same tie order."""

from __future__ import annotations

import hashlib
import hmac
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.admin import launches
from service.admin.models import LaunchCreate
from service.deps import Deps
from service.queue import draw

SEED = 20_260_401
_LETTERS = "abcXYZ019-_éüßçøñ漢字カナ한글жщ🎉🙂"


def _public_ids(rnd: random.Random, n: int) -> list[str]:
    ids: set[str] = set()
    while len(ids) < n:
        ids.add("".join(rnd.choice(_LETTERS) for _ in range(rnd.randint(1, 16))))
    return sorted(ids)


@pytest.mark.parametrize("seed_len", [32, 100], ids=["seed-32", "seed-over-64"])
async def test_postgres_orders_the_draw_set_exactly_as_the_reference(
    deps: Deps, seed_len: int
) -> None:
    rnd = random.Random(SEED + seed_len)
    await launches.create_launch(
        deps, LaunchCreate(id="dq", name="D"), actor="test", channel="admin"
    )
    public = _public_ids(rnd, 3000)
    assert any(not p.isascii() for p in public)
    ids = {
        p: i
        for p, i in await deps.pool.fetch(
            "INSERT INTO registrations (launch_id, public_id, email, email_norm)"
            " SELECT 'dq', p, 'e' || n, 'e' || n FROM unnest($1::text[]) WITH ORDINALITY AS u (p, n)"
            " RETURNING public_id, id",
            public,
        )
    }
    roster = sorted(rnd.sample(public, 2500))  # the rest verified too late: outsiders
    seed = rnd.randbytes(seed_len)
    await deps.pool.execute(
        "INSERT INTO draws (launch_id, seed_hash, seed, roster, roster_hash)"
        " VALUES ('dq', '', $1, $2, '')",
        seed,
        roster,
    )
    arrived = rnd.sample(public, 2800)  # not everyone checked in
    members = [ids[p] for p in arrived]
    members.insert(1234, 10**15)  # in the draw set but no registration: an outsider
    async with deps.pool.acquire() as con, con.transaction():
        ranked, outside = await draw.drawn_order(con, "dq", seed, members)

    on_roster = set(roster)
    by_id = {i: p for p, i in ids.items()}
    expected = draw.order(seed, [p for p in arrived if p in on_roster])
    assert [by_id[i] for i in ranked] == expected, f"seed {SEED + seed_len}"
    assert outside == [m for m in members if by_id.get(m) not in on_roster]


@given(
    seed=st.binary(min_size=0, max_size=100),
    ids=st.lists(st.text(max_size=30), max_size=20),
)
def test_draw_keys_are_hmac_sha256_of_each_id(seed: bytes, ids: list[str]) -> None:
    """The pads hashed once give what the standard library's HMAC gives, any key length."""
    expected = [hmac.new(seed, i.encode(), hashlib.sha256).digest() for i in ids]
    assert draw.draw_keys(seed, ids) == expected
