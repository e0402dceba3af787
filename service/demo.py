"""A seeded demo launch: 2 stores, 2 SKUs, a few dozen units, a handful of shoppers."""

from __future__ import annotations

import msgspec

from service.admin import allocations, launches
from service.admin.models import ItemCreate, LaunchCreate, Transition
from service.auth.apikeys import create_key
from service.deps import Deps
from service.errors import Conflict
from service.queue import registrations

DEMO_ID = "demo"
STORES = [("LDN", "London Regent St"), ("MAN", "Manchester Arndale")]
SKUS = [("PHONE-128", "Phone 17, 128 GB"), ("PHONE-256", "Phone 17, 256 GB")]
UNITS = {
    ("LDN", "PHONE-128"): 12,
    ("LDN", "PHONE-256"): 8,
    ("MAN", "PHONE-128"): 10,
    ("MAN", "PHONE-256"): 6,
}
SHOPPERS: list[dict[str, object]] = [
    {"email": f"shopper{i}@example.com", "name": name}
    for i, name in enumerate(
        [
            "Ada Lovelace",
            "Alan Turing",
            "Grace Hopper",
            "Edsger Dijkstra",
            "Barbara Liskov",
            "Donald Knuth",
            "Frances Allen",
            "Ken Thompson",
        ],
        1,
    )
]


class DemoInfo(msgspec.Struct):
    launch_id: str
    admin_key: str
    shopper_tokens: dict[str, str]


async def seed(deps: Deps) -> DemoInfo:
    """Create (or reuse) the demo launch, selling now; a fresh admin key each time."""
    actor, channel = "demo", "admin"
    try:
        await launches.create_launch(
            deps,
            LaunchCreate(
                id=DEMO_ID, name="Phone 17 launch (demo)", hold_seconds=120, per_customer_limit=2
            ),
            actor=actor,
            channel=channel,
        )
        for table, items in (("stores", STORES), ("skus", SKUS)):
            for item_id, name in items:
                await launches.add_item(
                    deps,
                    DEMO_ID,
                    table,
                    ItemCreate(id=item_id, name=name),
                    actor=actor,
                    channel=channel,
                )
        for (store_id, sku_id), n in UNITS.items():
            await allocations.set_allocation(
                deps, DEMO_ID, store_id, sku_id, n, actor=actor, channel=channel
            )
        await registrations.import_registrations(
            deps,
            DEMO_ID,
            [(i + 1, s) for i, s in enumerate(SHOPPERS)],
            actor=actor,
            channel=channel,
        )
        await launches.transition(
            deps,
            DEMO_ID,
            Transition(action="advance", to="selling", reason="demo"),
            actor=actor,
            channel=channel,
        )
    except Conflict:
        pass  # seeded on an earlier run; the embedded data dir keeps it
    key = await create_key(deps.pool, "admin", label="demo")
    tokens = {}
    for reg in await registrations.list_registrations(deps, DEMO_ID, limit=len(SHOPPERS)):
        tokens[reg.email] = (await registrations.issue_token(deps, DEMO_ID, reg.id)).token
    return DemoInfo(launch_id=DEMO_ID, admin_key=key, shopper_tokens=tokens)
