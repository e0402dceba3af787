"""Who does what, when: every shopper's and bot's behaviour drawn from one seed, so a
rehearsal's crowd can be replayed exactly (`--seed`)."""

from __future__ import annotations

import random

import msgspec

from service.rehearse.options import Options
from service.rehearse.records import BEHAVIOURS, BOT_KINDS, Bot, CrowdPlan, Shopper, Timeline

FLEXIBLE_STORE = 0.7
"""Share of shoppers who take another store when theirs has none left."""
FLEXIBLE_SKU = 0.4
"""Share who take another model (SKU) when theirs is gone everywhere they would go."""
EARLY, LATE = 0.15, 0.15
"""Spike arrival: shares arriving before the sale starts and well after it."""
SPIKE_MEAN_S = 2.0
"""The rest arrive after the start, exponentially: most in its first seconds."""


def address(i: int, first: int = 10) -> str:
    """A distinct simulated IPv4 address per index (10.x.y.z for shoppers)."""
    n = i + 1
    return f"{first}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def arrival(rng: random.Random, options: Options, t: Timeline) -> float:
    first = t.checkin_opens_at + 1.5  # after the scheduler has surely opened check-in
    if options.arrival == "steady":
        return rng.uniform(first, t.sale_starts_at + min(60.0, options.duration / 2))
    roll = rng.random()
    if roll < EARLY:
        return rng.uniform(first, t.sale_starts_at)
    if roll < EARLY + LATE:
        return t.sale_starts_at + rng.uniform(5.0, min(45.0, options.duration / 2))
    return t.sale_starts_at + min(20.0, rng.expovariate(1 / SPIKE_MEAN_S))


def _seconds(rng: random.Random, median: float, most: float) -> float:
    """A think time: log-normal around `median`, at most `most` seconds."""
    return round(min(most, rng.lognormvariate(0, 0.6) * median), 2)


def shoppers(
    options: Options,
    timeline: Timeline,
    tokens: list[tuple[int, str]],
    stores: list[str],
    skus: list[str],
) -> list[Shopper]:
    """One plan per (registration id, shopper token), seeded by `options.seed`."""
    rng = random.Random(options.seed)
    kinds, weights = list(BEHAVIOURS), list(BEHAVIOURS.values())
    out = []
    for i, (registration_id, token) in enumerate(tokens):
        where = _preference(rng, stores, FLEXIBLE_STORE)
        what = _preference(rng, skus, FLEXIBLE_SKU)
        out.append(
            Shopper(
                index=i,
                registration_id=registration_id,
                token=token,
                address=address(i),
                arrive_at=round(arrival(rng, options, timeline), 3),
                behaviour=rng.choices(kinds, weights)[0],
                choices=[(store, sku) for sku in what for store in where],
                think_s=_seconds(rng, 2.0, options.window_seconds * 0.6),
                hold_think_s=_seconds(rng, 3.0, options.hold_seconds * 0.5),
                cancel_after_s=round(rng.uniform(3.0, 15.0), 2),
            )
        )
    return out


def _preference(rng: random.Random, items: list[str], flexible: float) -> list[str]:
    """The preferred item (the first is the most popular), then, for the flexible, the
    rest in a random order."""
    preferred = rng.choices(items, [1 / (i + 1) for i in range(len(items))])[0]
    others = [x for x in items if x != preferred] if rng.random() < flexible else []
    rng.shuffle(others)
    return [preferred, *others]


def bots(options: Options, timeline: Timeline, tokens: list[str], tag: str) -> list[Bot]:
    """`options.bots` bots, their kinds in turn (`BOT_KINDS`)."""
    rng = random.Random(options.seed + 1)
    out = []
    for j in range(options.bots):
        kind = BOT_KINDS[j % len(BOT_KINDS)]
        token = tokens[j]
        emails: list[str] = []
        arrive = timeline.sale_starts_at + rng.uniform(2.0, 4.0)
        if kind == "dup_signup":
            arrive = timeline.registration_closes_at - 3.0
            emails = signup_variants(f"bot.{j}.{tag}")
        elif kind == "replay":
            arrive = timeline.sale_starts_at + rng.uniform(0.0, 2.0)
        out.append(Bot(j, kind, address(j, first=203), token, round(arrive, 3), emails))
    return out


def signup_variants(local: str) -> list[str]:
    """One Gmail address spelled the ways de-duplication must see through."""
    base = f"{local.replace('.', '')}@gmail.com"
    name = base.split("@")[0]
    dotted = ".".join(name[i : i + 3] for i in range(0, len(name), 3))
    return [
        base,
        base.upper(),
        f"{dotted}@gmail.com",
        f"{name}+drop@gmail.com",
        f"{name}+1@googlemail.com",
        f" {base} ",
        f"{name.capitalize()}@Gmail.com",
        f"{dotted}+x@gmail.com",
    ]


def shard(plan: CrowdPlan, k: int, n: int) -> CrowdPlan:
    """The `k`th of `n` crowd processes' share of the plan."""
    return msgspec.structs.replace(plan, shoppers=plan.shoppers[k::n], bots=plan.bots[k::n])
