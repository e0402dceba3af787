"""The Redis client and the Lua scripts, registered once per client."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisError, ResponseError

from service.errors import Unavailable
from service.infra import metrics
from service.infra.keys import LaunchKeys
from service.infra.lua import SCRIPT_NAMES, Origins, assemble, located, script_keys
from service.infra.outages import outage
from service.infra.redis_packing import HiredisPackedConnection, ScriptHead
from service.infra.settings import Settings

Redis = aioredis.Redis | RedisCluster
"""A single server or a Redis Cluster: every call fairdrop makes works on both."""


@dataclass(frozen=True)
class _Script:
    source: str
    keys: tuple[str, ...]
    """The names of the launch keys it takes, in order."""
    sha: str
    """Its SHA1, by which Redis knows it (a name, not a security measure)."""
    origins: Origins

    @classmethod
    def named(cls, name: str) -> _Script:
        source, origins = assemble(name)
        sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
        return cls(source, script_keys(name), sha, origins)

    def failed(self, exc: RedisError) -> Exception:
        """What a failed call raises: an outage as `Unavailable`; a script's own error
        naming the Lua file and line (not the assembled script's)."""
        if (down := outage(exc)) is not None:
            return down
        return located(self.origins, exc) if isinstance(exc, ResponseError) else exc


def create_redis(
    url: str,
    *,
    cluster: bool = False,
    max_connections: int = 200,
    pool_timeout: float = 10.0,
    timeout: float = 5.0,
) -> Redis:
    """A client whose callers beyond `max_connections` wait (up to `pool_timeout` s)
    for a free connection, instead of failing at once with "Too many connections".
    A command (or a connect) that gets no answer in `timeout` s fails, as an outage: a
    frozen or cut-off Redis answers nothing, and the kernel still accepts.

    With `cluster`, `url` names any node of a Redis Cluster: the client learns the
    slots and sends each command (each script: every key of a launch shares its hash
    slot) to the shard that owns it, following MOVED and ASK as shards move.
    """
    if cluster:
        return RedisCluster.from_url(
            url,
            decode_responses=True,
            max_connections=max_connections,
            health_check_interval=30,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        connection_class=HiredisPackedConnection,
        decode_responses=True,
        max_connections=max_connections,
        timeout=pool_timeout,
        health_check_interval=30,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )
    return aioredis.Redis.from_pool(pool)


def redis_for(settings: Settings) -> Redis:
    """The client `settings` name: `REDIS_URL`, a Redis Cluster with `FAIRDROP_REDIS_CLUSTER`."""
    assert settings.redis_url is not None, "resolve the embedded default first"
    return create_redis(
        settings.redis_url, cluster=settings.redis_cluster, timeout=settings.redis_timeout_seconds
    )


_MAX_HEADS = 4096


def packs_heads(client: aioredis.Redis) -> bool:
    """Whether `client` sends a `ScriptHead` as it is (`create_redis`'s single-server client)."""
    return issubclass(client.connection_pool.connection_class, HiredisPackedConnection)


def _decodes(client: Redis) -> bool:
    if isinstance(client, RedisCluster):
        return bool(client.get_encoder().decode_responses)
    return bool(client.connection_pool.connection_kwargs.get("decode_responses"))


class Scripts:
    """The launch scripts on one client. `await scripts.run("reserve", keys, now, ...)`.

    Each call is a plain EVALSHA; on NOSCRIPT (a restarted or failed-over Redis, a
    cluster shard that never saw the script) the script is loaded and the call sent
    again. Redis out (down, timing out, BUSY) surfaces as `Unavailable` here
    (`service.infra.outages`), the one seam between the scripts and the backend, where
    each call is timed too (`fairdrop_redis_call_duration_seconds`).
    """

    def __init__(self, client: Redis) -> None:
        if not _decodes(client):
            raise ValueError("Scripts needs a client that decodes replies (create_redis)")
        self.client = client
        self._scripts: dict[str, _Script] = {name: _Script.named(name) for name in SCRIPT_NAMES}
        # The single-server client's `execute_command`, which sends heads (`ScriptHead`);
        # None on a cluster, where the keys go as they are, for it to find the shard by.
        self._send: Callable[..., Awaitable[Any]] | None = None
        if isinstance(client, aioredis.Redis) and packs_heads(client):
            self._send = client.execute_command
        self._heads: dict[tuple[str, LaunchKeys], ScriptHead] = {}

    async def run(self, name: str, keys: LaunchKeys, *args: str | int | float) -> Any:
        """The script's reply, its strings already decoded (`create_redis`'s client).

        The client's `execute_command` is awaited right here, with no wrapper coroutine
        between (redis-py's `AsyncScript` was one), with the script and the launch's
        keys packed once (`ScriptHead`): the hold path is this call and little else."""
        script = self._scripts[name]
        send = self._send
        start = time.perf_counter()
        try:
            if send is None:
                given = keys.named(script.keys)
                return await self.client.evalsha(script.sha, len(given), *given, *args)
            heads = self._heads
            head = heads.get((name, keys))
            if head is None:
                if len(heads) >= _MAX_HEADS:  # launches come and go: keep it bounded
                    heads.clear()
                head = heads[name, keys] = ScriptHead(script.sha, keys.named(script.keys))
            return await send("EVALSHA", head, *args)
        except NoScriptError:
            return await self._load_and_run(script, keys.named(script.keys), args)
        except RedisError as exc:
            raise script.failed(exc) from exc
        finally:
            metrics.observe_redis(name, time.perf_counter() - start)

    async def _load_and_run(
        self, script: _Script, keys: tuple[str, ...], args: tuple[str | int | float, ...]
    ) -> Any:
        try:
            await self.client.script_load(script.source)
            return await self.client.evalsha(script.sha, len(keys), *keys, *args)
        except RedisError as exc:
            raise script.failed(exc) from exc

    async def run_many(
        self, name: str, keys: LaunchKeys, calls: Sequence[Sequence[str | int | float]]
    ) -> list[Any]:
        """Several calls of one script on one launch in one pipeline (one round trip)."""
        return await self.run_each(name, [(keys, args) for args in calls])

    async def run_each(
        self,
        name: str,
        calls: Sequence[tuple[LaunchKeys, Sequence[str | int | float]]],
        *,
        raise_on_error: bool = True,
    ) -> list[Any]:
        """Several calls of one script, each on its own launch, in one round trip.

        Each call stays atomic on its own. With `raise_on_error=False` a failing call's
        reply is its exception instead of failing them all.
        """
        if isinstance(self.client, RedisCluster):
            return await self._each_on_cluster(name, calls, raise_on_error=raise_on_error)
        # Plain EVALSHA in the pipeline: a script registered on a pipeline makes redis-py
        # ask SCRIPT EXISTS first, a second round trip on every call. A NOSCRIPT reply
        # means that call did nothing, so after loading the script only those run again.
        script = self._scripts[name]
        names = script.keys
        results: list[Any] = [None] * len(calls)
        pending = list(range(len(calls)))
        start = time.perf_counter()
        try:
            for attempt in (1, 2):
                async with self.client.pipeline(transaction=False) as pipe:
                    for i in pending:
                        keys, args = calls[i]
                        given = keys.named(names)
                        pipe.evalsha(script.sha, len(given), *given, *args)
                    replies = await pipe.execute(raise_on_error=False)
                missing = []
                for i, reply in zip(pending, replies, strict=True):
                    results[i] = reply
                    if isinstance(reply, NoScriptError):
                        missing.append(i)
                if not missing or attempt == 2:
                    break
                await self.client.script_load(script.source)
                pending = missing
        except RedisError as exc:
            raise script.failed(exc) from exc
        finally:
            metrics.observe_redis(name, time.perf_counter() - start)
        results = [script.failed(r) if isinstance(r, RedisError) else r for r in results]
        if raise_on_error:
            for reply in results:
                if isinstance(reply, Exception):
                    raise reply
        return results

    async def _each_on_cluster(
        self,
        name: str,
        calls: Sequence[tuple[LaunchKeys, Sequence[str | int | float]]],
        *,
        raise_on_error: bool,
    ) -> list[Any]:
        """On a Redis Cluster the calls go out together, each to its launch's shard:
        redis-py refuses EVALSHA in a cluster pipeline (a shard may lack the script),
        while each script call loads its script where it is missing."""
        results: list[Any] = await asyncio.gather(
            *(self.run(name, keys, *args) for keys, args in calls), return_exceptions=True
        )
        for reply in results:
            if isinstance(reply, Unavailable):
                raise reply
            if raise_on_error and isinstance(reply, BaseException):
                raise reply
        return results
