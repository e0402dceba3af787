"""The launch's CSV exports: registrations, reservations, the audit trail.

Read back with the csv module, as a spreadsheet would open them: a header row, one row
per thing, every formula-looking cell defused, more rows than one cursor batch.
"""

from __future__ import annotations

import csv
import io

import pytest
from litestar.testing import AsyncTestClient

from service.admin import exports
from service.auth.apikeys import create_key
from service.deps import Deps
from service.queue.checkin import check_in, current_rank
from service.queue.places import drain_places
from service.queue.registrations import import_registrations
from service.stock.codes import format_code
from service.stock.confirm import confirm
from service.stock.holds import reserve
from tests.serve import ACTOR, advance, selling_launch, stocked_launch

L = "exported"
_EVIL = '=HYPERLINK("http://evil.example","click")'


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def _get(client: AsyncTestClient, key: str, name: str) -> str:  # type: ignore[type-arg]
    r = await client.get(f"/api/admin/launches/{L}/exports/{name}.csv", headers={"X-API-Key": key})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == f'attachment; filename="{name}-{L}.csv"'
    return r.text


async def test_registrations_stream_in_batches_with_formulas_defused(
    deps: Deps,
    client: AsyncTestClient,  # type: ignore[type-arg]
    admin_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(exports, "BATCH", 3)  # several batches out of a few rows
    regs = await selling_launch(deps, L, registrations=7)
    await import_registrations(deps, L, [(1, {"email": "x@example.com", "name": _EVIL})], **ACTOR)
    await deps.pool.execute("UPDATE registrations SET verified_at = NULL WHERE id = $1", regs[1])
    rows = _rows(await _get(client, admin_key, "registrations"))
    assert list(rows[0]) == list(exports.REGISTRATION_COLUMNS)
    assert len(rows) == 8
    assert [int(r["id"]) for r in rows[:7]] == regs
    assert rows[0]["verified"] == "true" and rows[0]["verified_at"]
    assert rows[1]["verified"] == "false" and rows[1]["verified_at"] == ""
    evil = rows[7]
    assert evil["name"] == "'" + _EVIL
    assert evil["email"] == "x@example.com"


async def test_reservations_and_audit(
    deps: Deps,
    client: AsyncTestClient,  # type: ignore[type-arg]
    admin_key: str,
) -> None:
    regs = await selling_launch(deps, L, registrations=2)
    made = []
    for reg in regs:
        hold = await reserve(deps, L, reg, "S1", "K1")
        made.append(await confirm(deps, L, reg, hold.hold_id, channel="agent"))
    rows = _rows(await _get(client, admin_key, "reservations"))
    assert list(rows[0]) == list(exports.RESERVATION_COLUMNS)
    assert [(r["code"], r["store_id"], r["sku_id"], r["status"], r["channel"]) for r in rows] == [
        (format_code(m.code), "S1", "K1", "confirmed", "agent") for m in made
    ]
    audit = _rows(await _get(client, admin_key, "audit"))
    assert list(audit[0]) == list(exports.AUDIT_COLUMNS)
    kinds = [a["kind"] for a in audit]
    assert "launch.created" in kinds or kinds, kinds
    assert [int(a["id"]) for a in audit] == sorted(int(a["id"]) for a in audit)


async def test_an_unknown_launch_or_no_key_is_refused(
    client: AsyncTestClient,  # type: ignore[type-arg]
    admin_key: str,
) -> None:
    r = await client.get("/api/admin/launches/nope/exports/audit.csv")
    assert r.status_code == 401
    r = await client.get(
        "/api/admin/launches/nope/exports/audit.csv", headers={"X-API-Key": admin_key}
    )
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


async def test_a_key_of_another_launch_finds_none(
    deps: Deps,
    client: AsyncTestClient,  # type: ignore[type-arg]
) -> None:
    await selling_launch(deps, L, registrations=1)
    other = await create_key(deps.pool, "operator", label="other", launch_id="other")
    mine = await create_key(deps.pool, "operator", label="mine", launch_id=L)
    url = f"/api/admin/launches/{L}/exports/registrations.csv"
    assert (await client.get(url, headers={"X-API-Key": other})).status_code == 404
    assert (await client.get(url, headers={"X-API-Key": mine})).status_code == 200


def test_safe_cell() -> None:
    for cell in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert exports.safe_cell(cell) == "'" + cell
    assert exports.safe_cell("a=b") == "a=b"
    assert exports.safe_cell(None) == ""
    assert exports.safe_cell(True) == "true"


async def test_registrations_carry_their_draw_and_queue_places(
    deps: Deps,
    client: AsyncTestClient,  # type: ignore[type-arg]
    admin_key: str,
) -> None:
    regs = await stocked_launch(deps, L, registrations=5)
    await advance(deps, L, "registration_open", "registration_closed", "checkin_open")
    for reg in regs[:3]:
        await check_in(deps, L, reg)
    await advance(deps, L, "selling")  # the draw is revealed
    await check_in(deps, L, regs[3])  # late: queued behind the drawn
    await drain_places(deps, L)
    ranks = {reg: await current_rank(deps, L, reg) for reg in regs[:3]}
    assert None not in ranks.values()
    rows = {int(r["id"]): r for r in _rows(await _get(client, admin_key, "registrations"))}
    for reg in regs[:3]:
        assert rows[reg]["draw_place"] == str(int(ranks[reg] or 0) + 1), rows[reg]
    assert sorted(rows[reg]["draw_place"] for reg in regs[:3]) == ["1", "2", "3"]
    assert rows[regs[3]]["draw_place"] == "" and rows[regs[3]]["queue_place"] == "4"
    assert rows[regs[4]]["draw_place"] == rows[regs[4]]["queue_place"] == ""
