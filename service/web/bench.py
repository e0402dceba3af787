"""Baseline endpoints for `tests/bench/run.py`; mounted only when FAIRDROP_BENCH_ENDPOINTS=1.

`/_bench/hello` is the framework's ceiling; `/_bench/evalsha` does one bare EVALSHA
through the same client and dependencies as the shopper routes, sent as `Scripts.run`
sends a launch script (the client's `execute_command` with a `ScriptHead` packed
once, NOSCRIPT handled),
so the reserve benchmark can state its throughput as a ratio of that, measured in the
same run.
A POST to it decodes the same JSON body a hold request carries: reading the request
is part of any endpoint's one round trip, so the ratio isolates what reserve adds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, cast

import redis.asyncio as aioredis
from litestar import HttpMethod, get, post, route
from litestar.params import JSONBody
from redis.exceptions import NoScriptError

from service.deps import Deps
from service.infra.redis import ScriptHead
from service.web.params import AppDeps
from service.web.shopper import HoldCreate

# A baseline, not a launch operation, so it does not belong in lua/: one write, one key.
_BASELINE = "return redis.call('INCR', KEYS[1])"
_SHA = hashlib.sha1(_BASELINE.encode(), usedforsecurity=False).hexdigest()  # its Redis name

_METHODS = [HttpMethod.GET, HttpMethod.POST]


@route("/_bench/hello", http_method=_METHODS, operation_id="benchHello", include_in_schema=False)
async def hello() -> dict[str, str]:
    return {"hello": "world"}


_heads: dict[str, ScriptHead] = {}  # by key prefix


async def _evalsha(deps: Deps) -> dict[str, int]:
    prefix = deps.settings.redis_prefix
    head = _heads.get(prefix)
    if head is None:
        head = _heads[prefix] = ScriptHead(_SHA, [f"{prefix}fd:bench:evalsha"])
    # The benches serve a single Redis server (`Scripts` sends heads there alone).
    send: Callable[..., Awaitable[Any]] = cast(aioredis.Redis, deps.redis).execute_command
    try:
        value = await send("EVALSHA", head)
    except NoScriptError:
        await deps.redis.script_load(_BASELINE)
        value = await send("EVALSHA", head)
    return {"value": int(value)}


@get("/_bench/evalsha", operation_id="benchEvalshaGet", include_in_schema=False)
async def evalsha_get(deps: AppDeps) -> dict[str, int]:
    return await _evalsha(deps)


@post("/_bench/evalsha", operation_id="benchEvalsha", include_in_schema=False, status_code=201)
async def evalsha(deps: AppDeps, data: JSONBody[HoldCreate]) -> dict[str, int]:
    return await _evalsha(deps)


HANDLERS = [hello, evalsha_get, evalsha]
