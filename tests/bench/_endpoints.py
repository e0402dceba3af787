"""Baseline endpoints for `tests/bench/run.py`, mounted beside the app's own by
`tests/bench/_asgi.py` (never by the product).

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
from service.infra.redis_packing import ScriptHead
from service.web.params import AppDeps
from service.web.shopper import HoldCreate

# A baseline, not a launch operation, so it does not belong in lua/: one write, one key.
_BASELINE = "return redis.call('INCR', KEYS[1])"
_SHA = hashlib.sha1(_BASELINE.encode(), usedforsecurity=False).hexdigest()  # its Redis name

_METHODS = [HttpMethod.GET, HttpMethod.POST]


@route("/_bench/hello", http_method=_METHODS, operation_id="benchHello", include_in_schema=False)
async def hello() -> dict[str, str]:
    return {"hello": "world"}


# By (key prefix, client): the head, and the client's `execute_command` bound once, as
# `Scripts` keeps it (the benches serve a single Redis server, where `Scripts` sends
# heads). The bound method keeps its client alive, so the client's id stays its own.
_heads: dict[tuple[str, int], tuple[ScriptHead, Callable[..., Awaitable[Any]]]] = {}


async def _evalsha(deps: Deps) -> dict[str, int]:
    prefix = deps.settings.redis_prefix
    found = _heads.get((prefix, id(deps.redis)))
    if found is None:
        head = ScriptHead(_SHA, [f"{prefix}fd:bench:evalsha"])
        found = _heads[prefix, id(deps.redis)] = (
            head,
            cast(aioredis.Redis, deps.redis).execute_command,
        )
    head, send = found
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
