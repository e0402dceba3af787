"""The rehearsal's launch, shoppers and staff, set up through the admin API only (the
same calls against a target and against servers it started), and the lifecycle
moments it schedules: the launch's own timings, moved by fairdrop's scheduler."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import msgspec

from service.rehearse.options import Options, Refused
from service.rehearse.records import Timeline

T = TypeVar("T")
THREADS = 8
TRIES = 3
PAGE = 1000
CHECKIN_GAP_S = 3.0
"""Registration closes, then check-in opens this much later: the scheduler moves a
launch once a sweep (~1 s), and must see each state to do its work (the commitment)."""


class SetupFailed(Refused):
    """The target would not let the launch be set up (its answer says why)."""


class Prepared(msgspec.Struct, kw_only=True):
    launch_id: str
    stores: list[str]
    skus: list[str]
    allocation: dict[str, int]
    """`"store:sku"` → units."""
    shoppers: list[tuple[int, str]]
    """(registration id, shopper token), in shopper order."""
    bot_tokens: list[str]
    public_ids: dict[int, str]
    staff_keys: dict[str, list[str]] = msgspec.field(default_factory=dict)
    """Store → its desks' staff keys (`DESKS_PER_STORE` each)."""
    notes: list[str] = msgspec.field(default_factory=list)


class Admin:
    """The admin API over one connection pool. A 5xx or no answer is noted (the report
    lists it) and tried again, twice: a rehearsal's set-up should survive what it finds."""

    def __init__(self, base_url: str, key: str) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {key}", "X-Fairdrop-Channel": "admin"},
            timeout=60.0,
            limits=httpx.Limits(max_connections=THREADS * 2),
        )
        self.notes: list[str] = []

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        for attempt in range(TRIES):
            try:
                reply = self.http.request(method, path, **kw)
            except httpx.TransportError as exc:
                self.notes.append(f"admin {method} {_route(path)}: no answer ({exc})")
                if attempt == TRIES - 1:
                    raise SetupFailed(f"{method} {path}: no answer ({exc})") from exc
            else:
                if reply.status_code < 500 or attempt == TRIES - 1:
                    return reply
                what = f"{reply.status_code} {_type(reply)}"
                self.notes.append(f"admin {method} {_route(path)} {what}")
            time.sleep(1.0)  # a retry interval
        raise AssertionError("unreachable")

    def call(self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kw: Any) -> Any:
        """The answer's JSON, or `SetupFailed` when its status is not one of `ok`."""
        reply = self.send(method, path, **kw)
        if reply.status_code not in ok:
            raise SetupFailed(f"{method} {path} answered {reply.status_code}: {reply.text[:500]}")
        return reply.json() if reply.content else None


def _route(path: str) -> str:
    """A path without the launch's id, so that notes of one kind count together."""
    parts = path.split("/")
    return "/".join("{id}" if p.startswith("rehearsal-") else p for p in parts)


def _type(reply: httpx.Response) -> str:
    try:
        return str(reply.json().get("type", "")).rsplit("/", 1)[-1]
    except ValueError:
        return ""


def _parallel(work: Callable[[T], Any], items: list[T]) -> list[Any]:
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(work, items))


def split_units(units: int, pairs: list[str]) -> dict[str, int]:
    """`units` spread as evenly as they go over the (store, SKU) pairs."""
    share, extra = divmod(units, len(pairs))
    return {p: share + (1 if i < extra else 0) for i, p in enumerate(pairs)}


def prepare(admin: Admin, options: Options, tag: str) -> Prepared:
    """A draft launch with stores, SKUs, stock, verified shoppers and staff keys."""
    launch_id = f"rehearsal-{tag}"
    body: dict[str, object] = {
        "id": launch_id,
        "name": f"Rehearsal {tag}",
        "hold_seconds": options.hold_seconds,
        "per_customer_limit": options.limit,
        "fairness_mode": options.mode,
        "admit_rate": options.admit_rate,
        "active_cap": options.active_cap,
        "admission_window_seconds": options.window_seconds,
    }
    if options.mode == "lottery":
        body["lottery_size"] = min(options.shoppers, options.units * 3)
    admin.call("POST", "/api/admin/launches", json=body, ok=(200, 201))
    api = f"/api/admin/launches/{launch_id}"
    stores = [f"S{i + 1}" for i in range(options.stores)]
    skus = [f"K{i + 1}" for i in range(options.skus)]
    for kind, items in (("stores", stores), ("skus", skus)):
        for item in items:
            item_body = {"id": item, "name": f"{kind} {item}"}
            admin.call("POST", f"{api}/{kind}", json=item_body, ok=(200, 201))
    allocation = split_units(options.units, [f"{s}:{k}" for s in stores for k in skus])
    for pair, n in allocation.items():
        store, sku = pair.split(":")
        admin.call("PUT", f"{api}/allocations/{store}/{sku}", json={"allocated": n})
    shopper_emails = [f"shopper{i}.{tag}@example.com" for i in range(options.shoppers)]
    bot_emails = [f"bot{j}.{tag}@example.com" for j in range(options.bots)]
    rows = [{"email": e, "name": e.split("@")[0]} for e in shopper_emails + bot_emails]
    report = admin.call("POST", f"{api}/registrations/import", json=rows)
    if report["created"] != len(rows):
        raise SetupFailed(f"the import created {report['created']} of {len(rows)}: {report}")
    listed = registrations(admin, launch_id)
    ids = {r["email"]: int(r["id"]) for r in listed}

    def token(email: str) -> str:
        return str(admin.call("POST", f"{api}/registrations/{ids[email]}/token")["token"])

    tokens = _parallel(token, shopper_emails + bot_emails)
    prepared = Prepared(
        launch_id=launch_id,
        stores=stores,
        skus=skus,
        allocation=allocation,
        shoppers=[(ids[e], t) for e, t in zip(shopper_emails, tokens, strict=False)],
        bot_tokens=tokens[len(shopper_emails) :],
        public_ids={int(r["id"]): str(r["public_id"]) for r in listed},
    )
    if options.staff:
        _staff_keys(admin, prepared)
    return prepared


def registrations(admin: Admin, launch_id: str) -> list[dict[str, Any]]:
    """Every registration of the launch, page by page."""
    out: list[dict[str, Any]] = []
    while True:
        after = out[-1]["id"] if out else 0
        page = admin.call(
            "GET",
            f"/api/admin/launches/{launch_id}/registrations",
            params={"after": after, "limit": PAGE},
        )
        out += page
        if len(page) < PAGE:
            return out


def transitions(admin: Admin, launch_id: str) -> dict[str, float]:
    """When the launch entered each state, from its audit trail (first time only)."""
    entered: dict[str, float] = {}
    after = 0
    while True:
        page = admin.call(
            "GET",
            f"/api/admin/launches/{launch_id}/events",
            params={"after": after, "limit": PAGE},
        )
        for event in page:
            to = event["data"].get("to") if event["kind"].startswith("launch.") else None
            if isinstance(to, str) and to not in entered:
                entered[to] = datetime.fromisoformat(event["at"]).timestamp()
        if len(page) < PAGE:
            return entered
        after = page[-1]["id"]


DESKS_PER_STORE = 2
"""Staff at each store's pickup desk, each with a key of their own."""


def _staff_keys(admin: Admin, prepared: Prepared) -> None:
    for store in prepared.stores:
        for desk in range(1, DESKS_PER_STORE + 1):
            label = f"rehearsal desk {desk} at {store}"
            body = {"role": "staff", "store_id": store, "label": label}
            reply = admin.send("POST", "/api/admin/keys", json=body)
            if reply.status_code == 403:
                prepared.notes.append("the admin key may not create staff keys: no pickup desk")
                prepared.staff_keys.clear()
                return
            if reply.status_code not in (200, 201):
                raise SetupFailed(
                    f"creating a staff key answered {reply.status_code}: {reply.text}"
                )
            prepared.staff_keys.setdefault(store, []).append(str(reply.json()["key"]))


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat()


def schedule(admin: Admin, launch_id: str, options: Options, lead_s: float) -> Timeline:
    """Give the launch its timings from now: registration open now, closed after
    `lead_s` (the crowd starts meanwhile), check-in, the sale."""
    now = time.time()
    t = Timeline(
        registration_closes_at=now + lead_s,
        checkin_opens_at=now + lead_s + CHECKIN_GAP_S,
        sale_starts_at=now + lead_s + CHECKIN_GAP_S + options.prequeue_seconds,
        stop_at=now + lead_s + CHECKIN_GAP_S + options.prequeue_seconds + options.duration,
    )
    patch = {
        "registration_opens_at": iso(now - 1),
        "registration_closes_at": iso(t.registration_closes_at),
        "checkin_opens_at": iso(t.checkin_opens_at),
        "sale_starts_at": iso(t.sale_starts_at),
    }
    admin.call("PATCH", f"/api/admin/launches/{launch_id}", json=patch)
    return t


def transition(admin: Admin, launch_id: str, action: str, to: str | None = None) -> str:
    """Move the launch by hand; returns the problem's words if it was refused."""
    body: dict[str, object] = {"action": action, "reason": "rehearsal"}
    if to is not None:
        body["to"] = to
    reply = admin.send("POST", f"/api/admin/launches/{launch_id}/transitions", json=body)
    return "" if reply.status_code == 200 else f"{action}: {reply.status_code} {reply.text[:300]}"
