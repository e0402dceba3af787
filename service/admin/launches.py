"""Creating, editing and moving launches through their lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import asyncpg
import msgspec

from service import errors, events, subjects
from service.admin import timeline
from service.admin.models import (
    STATES,
    TIMINGS,
    Item,
    ItemCreate,
    Launch,
    LaunchCreate,
    LaunchState,
    LaunchUpdate,
    Transition,
)
from service.deps import Deps
from service.queue import lifecycle
from service.stock.counts import units_left
from service.stock.rebuild import selling_flag
from service.store import supply

_LAUNCH_COLUMNS = ", ".join(f for f in Launch.__struct_fields__)


def _launch(row: asyncpg.Record | None) -> Launch:
    assert row is not None
    return Launch(**dict(row))


async def get_launch(deps: Deps, launch_id: str) -> Launch:
    row = await deps.pool.fetchrow(
        f"SELECT {_LAUNCH_COLUMNS} FROM launches WHERE id = $1", launch_id
    )
    if row is None:
        raise errors.NotFound(f"No launch {launch_id!r}.")
    return _launch(row)


async def launch_zone(deps: Deps, launch_id: str) -> str:
    """The launch's time zone (UTC for a launch that is gone)."""
    zone = await deps.pool.fetchval("SELECT time_zone FROM launches WHERE id = $1", launch_id)
    return str(zone or "UTC")


async def list_launches(deps: Deps) -> list[Launch]:
    rows = await deps.pool.fetch(f"SELECT {_LAUNCH_COLUMNS} FROM launches ORDER BY created_at")
    return [_launch(r) for r in rows]


async def _publish_settings(deps: Deps, launch: Launch) -> None:
    """Tell Redis what its scripts need to know of the launch (only if loaded there)."""
    await supply.publish_settings(
        deps.scripts,
        deps.keys(launch.id),
        selling=bool(selling_flag(launch.state, launch.paused)),
        hold_ms=launch.hold_seconds * 1000,
        limit=launch.per_customer_limit,
    )


def _check_mode(mode: object, lottery_size: object) -> None:
    if mode == "lottery" and lottery_size is None:
        raise errors.InvalidField(
            "The lottery mode needs `lottery_size`: how many registrations the draw invites.",
            field="lottery_size",
        )


async def create_launch(deps: Deps, body: LaunchCreate, *, actor: str, channel: str) -> Launch:
    _check_mode(body.fairness_mode, body.lottery_size)
    fields = msgspec.structs.asdict(body)
    timeline.check_order(fields)
    columns = list(fields)
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    async with deps.pool.acquire() as con, con.transaction():
        try:
            row = await con.fetchrow(
                f"INSERT INTO launches ({', '.join(columns)}) VALUES ({placeholders})"
                f" RETURNING {_LAUNCH_COLUMNS}",
                *fields.values(),
            )
        except asyncpg.UniqueViolationError as exc:
            raise errors.Conflict(f"A launch {body.id!r} exists already.") from exc
        await events.record(
            con,
            launch_id=body.id,
            actor=actor,
            channel=channel,
            kind="launch.created",
            subject=subjects.launch(body.id),
            data={"name": body.name},
        )
    return _launch(row)


async def update_launch(
    deps: Deps, launch_id: str, body: LaunchUpdate, *, actor: str, channel: str
) -> Launch:
    changes: dict[str, Any] = {
        k: v for k, v in msgspec.structs.asdict(body).items() if v is not msgspec.UNSET
    }
    if not changes:
        return await get_launch(deps, launch_id)
    sets = ", ".join(f"{col} = ${i}" for i, col in enumerate(changes, start=2))
    async with deps.pool.acquire() as con, con.transaction():
        row = await con.fetchrow(
            f"UPDATE launches SET {sets}, updated_at = now() WHERE id = $1"
            f" RETURNING {_LAUNCH_COLUMNS}",
            launch_id,
            *changes.values(),
        )
        if row is None:
            raise errors.NotFound(f"No launch {launch_id!r}.")
        draw_rules = {"fairness_mode", "lottery_size"} & set(changes)
        if draw_rules and row["state"] not in ("draft", "registration_open"):
            raise errors.Conflict(
                f"{', '.join(sorted(draw_rules))} cannot change once registration has closed:"
                " the draw's rules were published with its commitment."
            )
        _check_mode(row["fairness_mode"], row["lottery_size"])
        timeline.check_order(dict(row))  # the stored times with the patch applied
        await events.record(
            con,
            launch_id=launch_id,
            actor=actor,
            channel=channel,
            kind="launch.updated",
            subject=subjects.launch(launch_id),
            data={k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in changes.items()},
        )
    launch = _launch(row)
    await _publish_settings(deps, launch)
    await lifecycle.publish_admission(deps, launch)
    return launch


async def add_item(
    deps: Deps, launch_id: str, table: str, body: ItemCreate, *, actor: str, channel: str
) -> Item:
    """Add a store (`table="stores"`) or a SKU (`table="skus"`)."""
    assert table in ("stores", "skus")
    await get_launch(deps, launch_id)
    async with deps.pool.acquire() as con, con.transaction():
        try:
            await con.execute(
                f"INSERT INTO {table} (launch_id, id, name) VALUES ($1, $2, $3)",
                launch_id,
                body.id,
                body.name,
            )
        except asyncpg.UniqueViolationError as exc:
            raise errors.Conflict(f"{body.id!r} exists already in this launch.") from exc
        await events.record(
            con,
            launch_id=launch_id,
            actor=actor,
            channel=channel,
            kind=f"{table[:-1]}.created",
            subject=subjects.launch(launch_id),
            data={"id": body.id, "name": body.name},
        )
    return Item(id=body.id, name=body.name)


async def list_items(deps: Deps, launch_id: str, table: str) -> list[Item]:
    assert table in ("stores", "skus")
    rows = await deps.pool.fetch(
        f"SELECT id, name FROM {table} WHERE launch_id = $1 ORDER BY id", launch_id
    )
    return [Item(id=r["id"], name=r["name"]) for r in rows]


def _allowed(current: str, target: str) -> bool:
    if target == "selling" and current == "sold_out":
        return True  # units came back
    return STATES.index(target) > STATES.index(current)


async def transition(
    deps: Deps, launch_id: str, body: Transition, *, actor: str, channel: str
) -> Launch:
    """Move a launch by hand: advance to a later state, pause, resume or close.

    An advance of several states steps through each one between, with an event each,
    so every phase's work is done on the way (the commitment as registration closes,
    the draw as the sale starts), as when the clock moves it."""
    if body.action == "advance" and body.to is not None:
        while True:
            state = await deps.pool.fetchval("SELECT state FROM launches WHERE id = $1", launch_id)
            step = timeline.step_towards(state, body.to) if state is not None else None
            if step is None or step == body.to:
                break
            await _transition(
                deps,
                launch_id,
                msgspec.structs.replace(body, to=step),
                actor=actor,
                channel=channel,
            )
    return await _transition(deps, launch_id, body, actor=actor, channel=channel)


async def _transition(
    deps: Deps, launch_id: str, body: Transition, *, actor: str, channel: str
) -> Launch:
    async with deps.pool.acquire() as con, con.transaction():
        current = await con.fetchrow(
            "SELECT state, paused FROM launches WHERE id = $1 FOR UPDATE", launch_id
        )
        if current is None:
            raise errors.NotFound(f"No launch {launch_id!r}.")
        state, paused = current["state"], current["paused"]
        if body.action == "advance":
            if body.to is None:
                raise errors.InvalidField("`to` names the state to advance to.", field="to")
            if not _allowed(state, body.to):
                raise errors.InvalidTransition(f"A launch cannot go from {state} to {body.to}.")
            state = body.to
        elif body.action == "close":
            if STATES.index(state) >= STATES.index("closed"):
                raise errors.InvalidTransition(f"The launch is {state} already.")
            state = "closed"
        else:
            want = body.action == "pause"
            if paused == want:
                raise errors.InvalidTransition(
                    f"The launch is {'paused' if want else 'running'} already."
                )
            paused = want
        row = await con.fetchrow(
            f"UPDATE launches SET state = $2, paused = $3, updated_at = now() WHERE id = $1"
            f" RETURNING {_LAUNCH_COLUMNS}",
            launch_id,
            state,
            paused,
        )
        await events.record(
            con,
            launch_id=launch_id,
            actor=actor,
            channel=channel,
            kind=f"launch.{body.action}",
            subject=subjects.launch(launch_id),
            data={"from": current["state"], "to": state, "paused": paused, "reason": body.reason},
        )
    launch = _launch(row)
    await _publish_settings(deps, launch)
    await lifecycle.on_state(deps, launch, current["state"])
    return launch


async def advance_due(deps: Deps) -> list[Launch]:
    """Move every launch whose timings have come, one state at a time so each phase's
    work is done on the way (`timeline.next_step`); run by the sweeper. Returns the
    launches moved, as they ended up."""
    now = datetime.fromtimestamp(deps.clock.now_ms() / 1000, tz=UTC)
    moved = []
    for launch in await list_launches(deps):
        stepped = None
        for _ in STATES:  # a bound: every step is to a later state
            target = timeline.next_step(launch.state, msgspec.structs.asdict(launch), now)
            if target is None:
                break
            try:
                launch = stepped = await transition(
                    deps,
                    launch.id,
                    Transition(action="advance", to=cast(LaunchState, target), reason="scheduled"),
                    actor="scheduler",
                    channel="system",
                )
            except errors.InvalidTransition:
                break  # someone moved it by hand meanwhile; the next sweep sees where
        if stepped is not None:
            moved.append(stepped)
    return moved


_NEXT_TIMING = (
    "SELECT min(t) FROM launches, unnest(ARRAY[{}]) AS t WHERE state <> 'archived' AND t > $1"
).format(", ".join(TIMINGS))


async def next_timing_ms(deps: Deps) -> int | None:
    """When the next launch timing after now comes (ms since the epoch), None if none."""
    now = datetime.fromtimestamp(deps.clock.now_ms() / 1000, tz=UTC)
    at: datetime | None = await deps.pool.fetchval(_NEXT_TIMING, now)
    return None if at is None else int(at.timestamp() * 1000)


async def follow_stock(deps: Deps) -> list[Launch]:
    """Sold out follows the stock (run by the sweeper): a selling launch with nothing
    available or held becomes `sold_out`, and goes back to `selling` when units return
    (a cancel, a lapsed hold, an added allocation, a no-show). Returns those moved."""
    moved = []
    for row in await deps.pool.fetch(
        "SELECT id, state FROM launches WHERE state IN ('selling', 'sold_out')"
    ):
        left = await units_left(deps, row["id"])
        if left is None:
            continue
        to: LaunchState = "sold_out" if left == 0 else "selling"
        if to == row["state"]:
            continue
        reason = "nothing available or held" if left == 0 else f"{left} unit(s) came back"
        try:
            moved.append(
                await transition(
                    deps,
                    row["id"],
                    Transition(action="advance", to=to, reason=reason),
                    actor="scheduler",
                    channel="system",
                )
            )
        except errors.InvalidTransition:
            continue  # closed by hand meanwhile
    return moved
