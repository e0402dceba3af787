"""The Redis client: commands packed by hiredis are the bytes redis-py itself would send."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import strategies as st
from redis.exceptions import DataError, ResponseError

from service.deps import Deps
from service.infra.redis import packs_heads
from service.infra.redis_packing import HiredisPackedConnection, ScriptHead

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


@given(
    keys=st.lists(st.text(min_size=1, max_size=40), max_size=12),
    args=_args,
    calls=st.integers(min_value=1, max_value=3),
)
def test_a_script_head_packs_like_the_whole_command(
    keys: list[str], args: list[str | bytes | int], calls: int
) -> None:
    """Packed once, a head gives the bytes of `EVALSHA sha numkeys *keys *args`, call
    after call, whatever the argument count (each count has its own `*<n>` line)."""
    sha = "a" * 40
    head = ScriptHead(sha, keys)
    theirs = aioredis.Connection()
    for n in [*range(len(args) + 1)][-calls:]:
        ours = HiredisPackedConnection().pack_command("EVALSHA", head, *args[:n])
        assert b"".join(ours) == b"".join(
            theirs.pack_command("EVALSHA", sha, len(keys), *keys, *args[:n])
        )


def test_a_script_head_refuses_what_it_cannot_pack() -> None:
    with pytest.raises(DataError):
        HiredisPackedConnection().pack_command("EVALSHA", ScriptHead("a" * 40, ["k"]), object())


async def test_scripts_send_heads_through_the_service_client(deps: Deps) -> None:
    """The service's single-server client takes the packed path (and a head is built
    once per script and launch); the reply is the script's, NOSCRIPT handled."""
    assert isinstance(deps.redis, aioredis.Redis) and packs_heads(deps.redis)
    keys = deps.keys("never-made")
    now = deps.clock.now_ms()
    await deps.redis.script_flush()
    assert await deps.scripts.run("expire", keys, now, -1) == 0
    assert await deps.scripts.run("expire", keys, now, -1) == 0
    assert list(deps.scripts._heads or {}) == [("expire", keys)]


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


async def test_pipelined_scripts_come_back_after_redis_forgets_them(deps: Deps) -> None:
    keys = deps.keys("never-made")
    now = deps.clock.now_ms()
    assert await deps.scripts.run_many("expire", keys, [(now, -1), (now, 5)]) == [0, 0]
    await deps.redis.script_flush()  # as after a Redis restart or failover
    assert await deps.scripts.run_many("expire", keys, [(now, -1), (now, 5)]) == [0, 0]
    assert await deps.scripts.run("expire", keys, now, -1) == 0


async def test_a_failing_call_fails_the_batch_or_only_itself(deps: Deps) -> None:
    keys, broken = deps.keys("never-made"), deps.keys("broken")
    await deps.redis.set(broken.meta, "not a hash", px=60_000)  # WRONGTYPE for the script
    now = deps.clock.now_ms()
    calls = [(keys, (now, -1)), (broken, (now, -1))]
    with pytest.raises(ResponseError):
        await deps.scripts.run_each("expire", calls)
    good, bad = await deps.scripts.run_each("expire", calls, raise_on_error=False)
    assert good == 0 and isinstance(bad, ResponseError)
