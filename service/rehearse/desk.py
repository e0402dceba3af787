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
from service.web.ratelimit import LOOKUPS_PER_KEY

SHARE = 0.5
"""Share of each store's reservations collected; the rest are no-shows."""
RELEASE_WAIT_S = 30.0
"""How long after the window ends the no-shows may take to be released."""
BUDGET_S = 40.0
"""The longest the desks work: a store with more codes than its desks can look up and
collect in this time at the staff limit collects that many (a sample), the rest are
no-shows."""
TRIES = 5
"""A request refused 429 is repeated after its `Retry-After` this many times at most."""


RATE = LOOKUPS_PER_KEY.rate * 0.9
BURST = LOOKUPS_PER_KEY.burst - 2
"""A desk's own pace: a little under the staff limit, so that the desk's clock and the
service's need not agree to the millisecond."""


class Pace:
    """The staff limit (`LOOKUPS_PER_KEY`) kept on the desk's side, as a desk app would:
    a bucket of `burst` requests refilled at `rate` a second."""

    def __init__(self, rate: float = RATE, burst: float = BURST):
        self.rate, self.burst = rate, burst
        self.tokens, self.last = burst, time.monotonic()

    def delay(self, now: float) -> float:
        """Seconds to wait from `now` before the next request; takes its token."""
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


def codes_per_desk(seconds: float, rate: float = RATE, burst: float = BURST) -> int:
    """Codes one desk looks up and collects (two requests each) in `seconds`."""
    return int((burst + rate * seconds) // 2)


def sample(
    by_store: dict[str, list[str]], desks: dict[str, list[str]], rng: random.Random
) -> dict[str, list[str]]:
    """The codes each store's desks collect: `SHARE` of its reservations, at most what
    its desks manage in `BUDGET_S`."""
    out = {}
    for store, codes in by_store.items():
        room = codes_per_desk(BUDGET_S) * len(desks.get(store, []))
        out[store] = rng.sample(codes, min(round(len(codes) * SHARE), room))
    return out


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


class Desk:
    """One member of staff: their key, their connection, their pace."""

    def __init__(self, base_url: str, key: str, result: DeskResult) -> None:
        self.http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30.0
        )
        self.pace, self.result = Pace(), result

    def send(self, label: str, method: str, path: str) -> httpx.Response:
        """The request at the staff limit's pace; after a 429, again when it says."""
        for _ in range(TRIES):
            time.sleep(self.pace.delay(time.monotonic()))
            reply = self.http.request(method, path)
            _count(self.result, f"{label} {reply.status_code}")
            if reply.status_code != 429:
                return reply
            time.sleep(float(reply.headers.get("retry-after", "1")))
        return reply

    def collect(self, api: str, codes: list[str]) -> int:
        done = 0
        for code in codes:
            self.send("lookup", "GET", f"{api}/{code}")
            done += self.send("collect", "POST", f"{api}/{code}/collect").status_code == 200
        return done


def pickup_day(
    admin: Admin,
    launch_id: str,
    staff_keys: dict[str, list[str]],
    reservations: list[tuple[str, str]],
    seed: int,
) -> DeskResult:
    """`reservations`: (store, code) of every live reservation after the sale; each
    store's codes are shared among its desks (`staff_keys`), which work side by side."""
    result = DeskResult()
    by_store: dict[str, list[str]] = {}
    for store, code in reservations:
        by_store.setdefault(store, []).append(code)
    chosen = sample(by_store, staff_keys, random.Random(seed + 2))
    busiest = max((len(c) / len(staff_keys[s]) for s, c in chosen.items() if c), default=0)
    # Open until the busiest desk is done at the staff limit's pace, twice over.
    paced = max(0.0, 2 * busiest - BURST) / RATE
    window = 8.0 + 2 * paced
    starts = time.time()
    reply = admin.send(
        "PATCH",
        f"/api/admin/launches/{launch_id}",
        json={"pickup_starts_at": iso(starts - 0.5), "pickup_ends_at": iso(starts + window)},
    )
    if reply.status_code != 200:
        result.notes.append(f"opening the pickup window: {reply.status_code} {reply.text[:300]}")
        return result
    base = str(admin.http.base_url)
    desks = {s: [Desk(base, k, result) for k in keys] for s, keys in staff_keys.items()}
    api = f"/api/staff/launches/{launch_id}/reservations"
    work = [
        (desk, codes[i :: len(desks[s])])
        for s, codes in chosen.items()
        if s in desks
        for i, desk in enumerate(desks[s])
    ]
    try:
        with ThreadPoolExecutor(max(1, len(work))) as pool:
            result.collected = sum(pool.map(lambda w: w[0].collect(api, w[1]), work))
        result.no_shows_expected = len(reservations) - result.collected
        jobs = [(s, c) for s, codes in chosen.items() if s in desks for c in codes]
        _checks(result, {s: d[0] for s, d in desks.items()}, api, jobs, by_store)
    finally:
        for desk in (d for ds in desks.values() for d in ds):
            desk.http.close()
    _await_no_shows(admin, launch_id, result, starts + window)
    return result


def _checks(
    result: DeskResult,
    desks: dict[str, Desk],
    api: str,
    jobs: list[tuple[str, str]],
    by_store: dict[str, list[str]],
) -> None:
    if not jobs:
        return
    store, code = jobs[0]
    again = desks[store].send("check", "POST", f"{api}/{code}/collect")
    result.checks["second collect refused"] = (
        again.status_code == 409 and _problem(again) == "already-collected"
    )
    typed = " ".join(code.lower()[i : i + 4] for i in range(0, len(code), 4))
    result.checks["lookup forgives case and spaces"] = (
        desks[store].send("check", "GET", f"{api}/{typed}").status_code == 200
    )
    other = next((s for s in by_store if s != store and by_store[s]), None)
    if other is not None:
        peek = desks[store].send("check", "GET", f"{api}/{by_store[other][0]}")
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
