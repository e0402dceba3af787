"""The Redis client: commands packed by hiredis are the bytes redis-py itself would send."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import strategies as st
from redis.exceptions import DataError

from service.deps import Deps
from service.infra.redis import HiredisPackedConnection

_args = st.lists(
    st.one_of(
        st.text(max_size=40),
        st.binary(max_size=40),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
    ),
    max_size=30,
)


@given(name=st.sampled_from(["EVALSHA", "CONFIG GET", b"SET", b"CLIENT SETNAME"]), args=_args)
def test_packs_like_redis_py(name: str | bytes, args: list[str | bytes | int]) -> None:
    ours = HiredisPackedConnection()
    theirs = aioredis.Connection()
    assert b"".join(ours.pack_command(name, *args)) == b"".join(theirs.pack_command(name, *args))


def test_unpackable_argument_is_a_data_error() -> None:
    with pytest.raises(DataError):
        HiredisPackedConnection().pack_command("SET", "k", object())


async def test_the_service_client_uses_it(deps: Deps) -> None:
    key = f"{deps.settings.redis_prefix}packed"
    await deps.redis.set(key, "ünïcode ✓", px=60_000)
    assert await deps.redis.get(key) == "ünïcode ✓"
    connection = await deps.redis.connection_pool.get_connection()
    try:
        assert isinstance(connection, HiredisPackedConnection)
    finally:
        await deps.redis.connection_pool.release(connection)
