"""The demo: two seeded launches and a way in for every role.

`demo` is selling now (2 stores, 2 SKUs, 36 units, 8 verified shoppers); `demo-next` is
open for registration (register on its page, read the verification mail in the
outbox, follow it). Each run makes fresh API keys (admin, operator, agent, staff per
store) with a one-time sign-in link each, and a sign-in link per shopper. `reset`
drops the demo's launches, with everything under them, and the demo's keys: nothing
else in the database or Redis.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from service import errors
from service.admin import allocations, launches
from service.admin.models import ItemCreate, LaunchCreate, LaunchState, Transition
from service.auth import signin
from service.auth.apikeys import Role, create_key
from service.deps import Deps
from service.queue import registrations, signup
from service.store import logs

DEMO_ID = "demo"
NEXT_ID = "demo-next"
LAUNCHES = [DEMO_ID, NEXT_ID]
KEY_LABEL = "demo"
"""Every demo key's label starts with it (`demo: staff LDN`): `reset` revokes by it."""
STORES = [("LDN", "London Regent St"), ("MAN", "Manchester Arndale")]
UNITS = {
    DEMO_ID: {
        ("LDN", "PHONE-128"): 12,
        ("LDN", "PHONE-256"): 8,
        ("MAN", "PHONE-128"): 10,
        ("MAN", "PHONE-256"): 6,
    },
    NEXT_ID: {("LDN", "DISC"): 20, ("LDN", "DIGITAL"): 10, ("MAN", "DISC"): 15},
}
SKUS = {
    DEMO_ID: [("PHONE-128", "Phone 17, 128 GB"), ("PHONE-256", "Phone 17, 256 GB")],
    NEXT_ID: [("DISC", "Console 5, disc edition"), ("DIGITAL", "Console 5, digital edition")],
}
NAMES = [
    "Ada Lovelace",
    "Alan Turing",
    "Grace Hopper",
    "Edsger Dijkstra",
    "Barbara Liskov",
    "Donald Knuth",
    "Frances Allen",
    "Ken Thompson",
]
SHOPPERS: list[dict[str, object]] = [
    {"email": f"shopper{i}@example.com", "name": name} for i, name in enumerate(NAMES, 1)
]
KEYS: list[tuple[Role, str | None]] = [
    ("operator", None),
    *(("staff", store_id) for store_id, _ in STORES),
    ("agent", None),
    ("admin", None),
]
ACTOR = {"actor": "demo", "channel": "admin"}


class DemoKey(msgspec.Struct, frozen=True):
    role: Role
    store_id: str | None
    key: str
    signin_path: str
    """`/staff/login?token=…`: signs this key in once, within the hour."""


class DemoShopper(msgspec.Struct, frozen=True):
    email: str
    name: str
    token: str
    """The shopper token, for `Authorization: Bearer …`."""
    link: str
    """The verification link: opened in a browser, it signs this shopper in (a cookie)."""


class DemoInfo(msgspec.Struct, frozen=True):
    launches: list[tuple[str, str, str]]
    """(id, name, state) of each demo launch."""
    keys: list[DemoKey]
    shoppers: list[DemoShopper]
    """The selling launch's shoppers."""


def _hour(now_ms: int, hours: float) -> datetime:
    """A whole hour `hours` from now (UTC): dates that read well on the pages."""
    at = datetime.fromtimestamp(now_ms / 1000, tz=UTC) + timedelta(hours=hours)
    return at.replace(minute=0, second=0, microsecond=0)


def _plans(now_ms: int) -> dict[str, tuple[LaunchCreate, LaunchState, int]]:
    """Each launch: how it is created, the state it is moved to, how many shoppers."""
    return {
        DEMO_ID: (
            LaunchCreate(
                id=DEMO_ID,
                name="Phone 17 launch (demo)",
                time_zone="Europe/London",
                hold_seconds=120,
                per_customer_limit=2,
                registration_opens_at=_hour(now_ms, -72),
                registration_closes_at=_hour(now_ms, -24),
                checkin_opens_at=_hour(now_ms, -1),
                sale_starts_at=_hour(now_ms, 0),
            ),
            "selling",
            len(SHOPPERS),
        ),
        NEXT_ID: (
            LaunchCreate(
                id=NEXT_ID,
                name="Console 5 launch (demo)",
                time_zone="Europe/London",
                registration_opens_at=_hour(now_ms, 0),
                registration_closes_at=_hour(now_ms, 24 * 7),
                checkin_opens_at=_hour(now_ms, 24 * 8),
                sale_starts_at=_hour(now_ms, 24 * 8 + 1),
                pickup_starts_at=_hour(now_ms, 24 * 10),
            ),
            "registration_open",
            3,
        ),
    }


async def _seed_launch(deps: Deps, body: LaunchCreate, to: LaunchState, shoppers: int) -> None:
    try:
        await launches.create_launch(deps, body, **ACTOR)
    except errors.Conflict:
        return  # seeded on an earlier run; the data dir keeps it
    for store_id, name in STORES:
        await launches.add_item(
            deps, body.id, "stores", ItemCreate(id=store_id, name=name), **ACTOR
        )
    for sku_id, name in SKUS[body.id]:
        await launches.add_item(deps, body.id, "skus", ItemCreate(id=sku_id, name=name), **ACTOR)
    for (store_id, sku_id), n in UNITS[body.id].items():
        await allocations.set_allocation(deps, body.id, store_id, sku_id, n, **ACTOR)
    await registrations.import_registrations(
        deps, body.id, [(i + 1, s) for i, s in enumerate(SHOPPERS[:shoppers])], **ACTOR
    )
    await launches.transition(
        deps, body.id, Transition(action="advance", to=to, reason="demo"), **ACTOR
    )


async def seed(deps: Deps) -> DemoInfo:
    """Create (or keep) the demo launches; fresh keys, sign-in links and shopper links."""
    for body, to, imported in _plans(deps.clock.now_ms()).values():
        await _seed_launch(deps, body, to, imported)
    keys = []
    for role, store_id in KEYS:
        label = f"{KEY_LABEL}: {role}" + (f" {store_id}" if store_id else "")
        key = await create_key(deps.pool, role, label=label, store_id=store_id, actor="demo")
        token = await signin.create_link(deps, key)
        keys.append(DemoKey(role, store_id, key, f"/staff/login?token={token}"))
    shoppers = []
    for reg in await registrations.list_registrations(deps, DEMO_ID, limit=len(SHOPPERS)):
        token = (await registrations.issue_token(deps, DEMO_ID, reg.id)).token
        link = signup.verification_link(deps, DEMO_ID, reg.id)
        shoppers.append(DemoShopper(reg.email, reg.name or "", token, link))
    states = [
        (x.id, x.name, x.state) for x in await launches.list_launches(deps) if x.id in LAUNCHES
    ]
    return DemoInfo(launches=states, keys=keys, shoppers=shoppers)


async def reset(deps: Deps) -> None:
    """Drop the demo's launches with everything under them (Postgres and Redis) and the
    demo's keys. Other launches and keys are left as they are."""
    async with deps.pool.acquire() as con, con.transaction():
        # Reservations, events and outbox rows name a launch without a cascading key.
        for table in ("reservations", "events", "outbox"):
            await con.execute(f"DELETE FROM {table} WHERE launch_id = ANY($1)", LAUNCHES)
        await con.execute("DELETE FROM launches WHERE id = ANY($1)", LAUNCHES)
        await con.execute(
            "DELETE FROM api_keys WHERE label = $1 OR label LIKE $1 || ':%'", KEY_LABEL
        )
    for launch_id in LAUNCHES:
        await logs.forget_launch(deps.scripts, deps.keys(launch_id))


def describe(info: DemoInfo, public_url: str, command: str = "fairdrop") -> str:
    """What `fairdrop demo` prints: the launches, a way in for each role, the curl lines;
    `command` is how to run `fairdrop` from where the demo was started."""
    base = public_url.rstrip("/")
    lines = [f"\nfairdrop demo — open {base}/\n", "Launches"]
    labels = {"selling": "on sale now", "registration_open": "registration open"}
    for launch_id, name, state in info.launches:
        lines.append(f"  {name:26} {labels.get(state, state):18} {base}/launches/{launch_id}")
    lines += [
        "",
        "Sign in as a role in a browser (each link works once, within the hour; or paste",
        f"the key at {base}/staff/login). The keys work in the API as `Authorization: Bearer …`.",
    ]
    for k in info.keys:
        who = f"{k.role} {k.store_id}" if k.store_id else k.role
        lines += [f"  {who:14} {base}{k.signin_path}", f"  {'':14} key {k.key}"]
    lines += [
        "",
        f"Shoppers of {DEMO_ID!r} (on sale now): open a link to be that shopper in a browser,"
        " or send the token as `Authorization: Bearer …`.",
    ]
    for s in info.shoppers:
        lines += [f"  {s.email:22} {s.link}", f"  {'':22} token {s.token}"]
    first = info.shoppers[0].token if info.shoppers else "<shopper token>"
    api = f"{base}/api/launches/{DEMO_ID}"
    field = "python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])'"
    return (
        "\n".join(lines)
        + f"""

Every e-mail is kept in the outbox: `{command} outbox` prints them, {base}/outbox shows them.
Register at {base}/launches/{NEXT_ID}, then follow the link in the verification mail.

Try the API (a shopper checks in, is admitted within a second or two, holds, confirms):
  TICKET=$(curl -s -X POST {api}/queue/checkin -H 'Authorization: Bearer {first}' \\
           | {field} ticket)
  curl -s {api}/queue/status -H "Authorization: Bearer $TICKET"
  for i in $(seq 10); do curl -s {api}/queue/status -H "Authorization: Bearer $TICKET" \\
      | grep -q '"state":"admitted"' && break; sleep 1; done
  HOLD=$(curl -s -X POST {api}/holds -H "Authorization: Bearer $TICKET" \\
         -H 'Content-Type: application/json' -d '{{"store_id": "LDN", "sku_id": "PHONE-128"}}' \\
         | {field} hold_id)
  curl -s -X POST {api}/holds/$HOLD/confirm -H "Authorization: Bearer $TICKET"
"""
    )
