"""Holding and releasing units: one Lua script each, one Redis round trip."""

from __future__ import annotations

import functools
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from service import errors
from service.deps import Deps
from service.stock.hold_log import last_event
from service.stock.models import Hold
from service.stock.rebuild import ensure_loaded
from service.store import stock as store

T = TypeVar("T")

# What a script's first reply word means for the caller.
SCRIPT_ERRORS: dict[str, type[errors.FairdropError]] = {
    "launch-not-selling": errors.LaunchNotSelling,
    "sold-out": errors.SoldOut,
    "limit-reached": errors.LimitReached,
    "hold-expired": errors.HoldExpired,
    "hold-not-found": errors.HoldNotFound,
    "hold-confirming": errors.Conflict,
    "unknown-item": errors.NotFound,
    "duplicate-hold": errors.Conflict,
    "not-admitted": errors.NotAdmitted,
}

_DETAILS = {
    "unknown-item": "The launch has no such store or product.",
    "hold-confirming": "The hold is being confirmed and cannot be released now.",
}


def raise_for(word: str) -> None:
    """Raise the error a script's refusal word means; nothing for 'ok'."""
    if word == store.OK:
        return
    error = SCRIPT_ERRORS.get(word)
    if error is None:
        raise RuntimeError(f"unexpected script reply {word!r}")
    raise error(_DETAILS.get(word))


async def run_loaded(deps: Deps, launch_id: str, call: Callable[[], Awaitable[T]]) -> T:
    """A launch store call; if Redis has lost the launch (`NOT_LOADED`), rebuild it from
    Postgres once and call again."""
    reply = await call()
    if reply == store.NOT_LOADED:
        await ensure_loaded(deps, launch_id)
        reply = await call()
    return reply


def new_hold_id() -> str:
    """64 random bits as hex. Not a secret (every hold action also checks whose it is),
    so the fast generator serves; `random` reseeds itself in each forked worker."""
    return f"{random.getrandbits(64):016x}"


async def reserve(
    deps: Deps,
    launch_id: str,
    registration_id: int,
    store_id: str,
    sku_id: str,
    *,
    rank: int | None = None,
) -> Hold:
    """Hold one unit of `sku_id` at `store_id` for the registration, or raise why not.

    `rank` is the shopper's place in the queue (from their ticket): the hold needs a
    live admission. None means a staff channel vouches for the customer (agent, store
    desk): no queue, but the same limit and stock.
    """
    hold_id, keys = new_hold_id(), deps.keys(launch_id)
    call = functools.partial(
        store.reserve,
        deps.scripts,
        keys,
        now_ms=deps.clock.now_ms(),
        hold_id=hold_id,
        registration_id=registration_id,
        store_id=store_id,
        sku_id=sku_id,
        rank=rank,
    )
    held = await run_loaded(deps, launch_id, call)
    if isinstance(held, str):
        raise_for(held)
        raise AssertionError(held)  # raise_for raised: only 'ok' has a unit
    return Hold(
        hold_id=hold_id,
        launch_id=launch_id,
        registration_id=registration_id,
        store_id=store_id,
        sku_id=sku_id,
        unit_no=held.unit_no,
        expires_ms=held.expires_ms,
    )


async def release(deps: Deps, launch_id: str, registration_id: int, hold_id: str) -> None:
    call = functools.partial(
        store.release,
        deps.scripts,
        deps.keys(launch_id),
        now_ms=deps.clock.now_ms(),
        hold_id=hold_id,
        registration_id=registration_id,
    )
    word = await run_loaded(deps, launch_id, call)
    if word == "hold-not-found":
        raise await gone(deps, launch_id, registration_id, hold_id)
    raise_for(word)


async def gone(
    deps: Deps, launch_id: str, registration_id: int, hold_id: str
) -> errors.FairdropError:
    """Why a hold Redis no longer has cannot be confirmed or released, by its last event
    in the audit trail: expired or released (410 `hold-expired`, however long ago),
    confirmed (409: its reservation is what is left), or never this customer's (404)."""
    end = await last_event(deps, launch_id, registration_id, hold_id)
    if end is None:
        return errors.HoldNotFound("No such hold for this customer.")
    when = datetime.fromtimestamp(end.at_ms / 1000, tz=UTC)
    at = when.strftime("%Y-%m-%d %H:%M:%S UTC")
    if end.kind == "confirmed":
        return errors.Conflict(
            f"The hold was confirmed at {at}: it is a reservation now (cancel that instead)."
        )
    why = _ENDED.get(end.kind)
    if why is None:  # held, and nothing since: lost with Redis, its unit back in stock
        return errors.HoldExpired("The hold is no longer held; its unit went back to stock.")
    return errors.HoldExpired(f"The hold {why} at {at}.", ended_at=when.isoformat())


_ENDED = {
    "expired": "expired",
    "released": "was released",
    "refused": "was released (its reservation could not be recorded)",
}


async def expire(deps: Deps, launch_id: str, max_holds: int = -1) -> int:
    """Release holds past their time (the sweeper's tidy-up; scripts do it anyway)."""
    return await store.expire(
        deps.scripts, deps.keys(launch_id), now_ms=deps.clock.now_ms(), most=max_holds
    )
