"""What the launch console shows and does beyond the admin API's own functions: the
list's counts, the allocation grid, a grid's changes applied through `PUT
allocations`' function, a pasted or uploaded list imported with the API's parser."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from service import errors
from service.admin import allocations, launches
from service.admin.models import MAX_ALLOCATED, ImportReport, Item, Launch
from service.deps import Deps
from service.queue import registrations
from service.stock.counts import redis_counts
from service.stock.models import StockCount
from service.stock.rebuild import ensure_loaded


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    launch: Launch
    registered: int
    confirmed: int
    """Reservations confirmed (collected ones included)."""


async def summaries(deps: Deps, shown: list[Launch]) -> list[Summary]:
    """Each launch with how many registered and how many reservations it has."""
    rows = await deps.pool.fetch(
        "SELECT l.id,"
        " (SELECT count(*) FROM registrations r WHERE r.launch_id = l.id) AS registered,"
        " (SELECT count(*) FROM reservations s WHERE s.launch_id = l.id"
        "   AND s.status IN ('confirmed', 'collected')) AS confirmed"
        " FROM launches l WHERE l.id = ANY($1::text[])",
        [x.id for x in shown],
    )
    counts = {r["id"]: (r["registered"], r["confirmed"]) for r in rows}
    return [Summary(launch=x, registered=counts[x.id][0], confirmed=counts[x.id][1]) for x in shown]


class Grid(msgspec.Struct, frozen=True, kw_only=True):
    stores: list[Item]
    skus: list[Item]
    cells: dict[str, StockCount]
    """`"store/sku"` → its counts (absent: nothing allocated yet)."""


def cell(store_id: str, sku_id: str) -> str:
    """A grid cell's name, in the form and in `Grid.cells`."""
    return f"{store_id}/{sku_id}"


async def grid(deps: Deps, launch_id: str) -> Grid:
    stores = await launches.list_items(deps, launch_id, "stores")
    skus = await launches.list_items(deps, launch_id, "skus")
    await ensure_loaded(deps, launch_id)
    counts = await redis_counts(deps, launch_id)
    return Grid(stores=stores, skus=skus, cells={cell(c.store_id, c.sku_id): c for c in counts})


def _units(raw: str, words: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise errors.InvalidField(f"{words}: give a whole number of units.") from None
    if not 0 <= value <= MAX_ALLOCATED:
        raise errors.InvalidField(f"{words}: an allocation is 0 to {MAX_ALLOCATED:,} units.")
    return value


async def set_grid(
    deps: Deps, launch_id: str, form: Mapping[str, str], *, actor: str, channel: str
) -> tuple[int, dict[str, str]]:
    """Apply each changed cell (`alloc:<store>/<sku>`) with `set_allocation`, the one `PUT
    allocations` calls; returns how many changed and, per refused cell, why in words."""
    now = await grid(deps, launch_id)
    changed, refused = 0, {}
    for store in now.stores:
        for sku in now.skus:
            name = cell(store.id, sku.id)
            raw = form.get(f"alloc:{name}", "").strip()
            current = now.cells.get(name)
            if raw in ("", str(current.allocated if current else 0)):
                continue
            words = f"{store.name}, {sku.name}"
            try:
                wanted = _units(raw, words)
                await allocations.set_allocation(
                    deps, launch_id, store.id, sku.id, wanted, actor=actor, channel=channel
                )
            except errors.AllocationTooLow:
                after = (await grid(deps, launch_id)).cells[name]
                refused[name] = _below(words, wanted, after)
                continue
            except errors.FairdropError as exc:
                refused[name] = exc.detail
                continue
            changed += 1
    return changed, refused


def _below(words: str, wanted: int, count: StockCount) -> str:
    """`set_allocation`'s refusal (`AllocationTooLow`) in words, with the cell's counts."""
    taken = count.held + count.confirmed
    return (
        f"{words}: cannot go down to {wanted}, as {count.held} unit(s) are held and"
        f" {count.confirmed} reserved right now, so it cannot go below {taken}."
        f" It is {count.allocated} now."
    )


def read_list(text: str) -> list[tuple[int, dict[str, object]]]:
    """A list as the API's import reads it: JSON when it starts with `[`, else CSV."""
    body = text.lstrip("\ufeff").strip()
    if not body:
        raise errors.BadRequest("The list is empty: choose a file or paste the list.")
    if body.startswith("["):
        return registrations.parse_json(body.encode())
    return registrations.parse_csv(body + "\n")


async def import_list(
    deps: Deps, launch_id: str, text: str, *, actor: str, channel: str
) -> ImportReport:
    return await registrations.import_registrations(
        deps, launch_id, read_list(text), actor=actor, channel=channel
    )
