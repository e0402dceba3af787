"""Pickup day, rehearsed: the pickup window opens after the sale, each store's staff
collect a sample of its codes with their own key (through the same front door as the
crowd), the rest become no-shows when the window ends and their units go back."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import msgspec

from service.rehearse.setup import Admin, iso

SHARE = 0.5
"""Share of each store's reservations collected; the rest are no-shows."""
RELEASE_WAIT_S = 30.0
"""How long after the window ends the no-shows may take to be released."""


class DeskResult(msgspec.Struct, kw_only=True):
    collected: int = 0
    no_shows_expected: int = 0
    no_shows_released: int | None = None
    released_after_s: float | None = None
    """From the window's end until Postgres had released every no-show."""
    answers: dict[str, int] = msgspec.field(default_factory=dict)
    checks: dict[str, bool] = msgspec.field(default_factory=dict)
    """second collect refused, other store's code hidden, forgiving lookup."""
    notes: list[str] = msgspec.field(default_factory=list)


def _count(result: DeskResult, label: str) -> None:
    result.answers[label] = result.answers.get(label, 0) + 1


def _problem(reply: httpx.Response) -> str:
    try:
        return str(reply.json().get("type", "")).rsplit("/", 1)[-1]
    except ValueError:
        return ""


def pickup_day(
    admin: Admin,
    launch_id: str,
    staff_keys: dict[str, str],
    reservations: list[tuple[str, str]],
    seed: int,
) -> DeskResult:
    """`reservations`: (store, code) of every live reservation after the sale."""
    result = DeskResult()
    rng = random.Random(seed + 2)
    by_store: dict[str, list[str]] = {}
    for store, code in reservations:
        by_store.setdefault(store, []).append(code)
    sample = {s: rng.sample(codes, round(len(codes) * SHARE)) for s, codes in by_store.items()}
    todo = sum(len(c) for c in sample.values())
    window = 8.0 + 0.03 * todo
    starts = time.time()
    reply = admin.send(
        "PATCH",
        f"/api/admin/launches/{launch_id}",
        json={"pickup_starts_at": iso(starts - 0.5), "pickup_ends_at": iso(starts + window)},
    )
    if reply.status_code != 200:
        result.notes.append(f"opening the pickup window: {reply.status_code} {reply.text[:300]}")
        return result
    desks = {
        s: httpx.Client(base_url=admin.http.base_url, headers={"Authorization": f"Bearer {k}"},
                        timeout=30.0)
        for s, k in staff_keys.items()
    }
    api = f"/api/staff/launches/{launch_id}/reservations"
    try:
        def collect(item: tuple[str, str]) -> int:
            store, code = item
            desk = desks[store]
            _count(result, f"lookup {desk.get(f'{api}/{code}').status_code}")
            status = desk.post(f"{api}/{code}/collect").status_code
            _count(result, f"collect {status}")
            return status

        jobs = [(s, c) for s, codes in sample.items() if s in desks for c in codes]
        with ThreadPoolExecutor(4) as pool:
            result.collected = sum(1 for s in pool.map(collect, jobs) if s == 200)
        result.no_shows_expected = len(reservations) - result.collected
        _checks(result, desks, api, jobs, by_store)
    finally:
        for desk in desks.values():
            desk.close()
    _await_no_shows(admin, launch_id, result, starts + window)
    return result


def _checks(
    result: DeskResult,
    desks: dict[str, httpx.Client],
    api: str,
    jobs: list[tuple[str, str]],
    by_store: dict[str, list[str]],
) -> None:
    if not jobs:
        return
    store, code = jobs[0]
    again = desks[store].post(f"{api}/{code}/collect")
    result.checks["second collect refused"] = (
        again.status_code == 409 and _problem(again) == "already-collected"
    )
    typed = " ".join(code.lower()[i : i + 4] for i in range(0, len(code), 4))
    result.checks["lookup forgives case and spaces"] = (
        desks[store].get(f"{api}/{typed}").status_code == 200
    )
    other = next((s for s in by_store if s != store and by_store[s]), None)
    if other is not None:
        peek = desks[store].get(f"{api}/{by_store[other][0]}")
        result.checks["another store's code is 404"] = peek.status_code == 404


def _await_no_shows(admin: Admin, launch_id: str, result: DeskResult, ends: float) -> None:
    """Retry the stock endpoint until Postgres holds only the collected reservations."""
    time.sleep(max(0.0, ends - time.time()))
    deadline = ends + RELEASE_WAIT_S
    while True:
        stock = admin.call("GET", f"/api/admin/launches/{launch_id}/stock")
        live = sum(live for _, live in stock["postgres"].values())
        if live <= result.collected:
            result.no_shows_released = result.no_shows_expected
            result.released_after_s = round(time.time() - ends, 1)
            return
        if time.time() > deadline:
            result.no_shows_released = result.no_shows_expected - (live - result.collected)
            result.notes.append(
                f"{live - result.collected} no-shows still live {RELEASE_WAIT_S:.0f} s"
                " after the pickup window ended"
            )
            return
        time.sleep(0.5)  # a retry interval
