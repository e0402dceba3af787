"""A stateful test of the stock engine against real Redis and Postgres (DESIGN §3).

Random sequences of reserve, release, confirm (also cut short after `confirm_begin`, with
Redis failing at `confirm_end`, or with the commit's reply lost), expire, clock moves,
allocation changes, cancels, rebuilds and reconciles run on one launch (2 stores, 2 SKUs,
6 shoppers); a small model predicts each outcome, and after every step invariants 1, 2, 3,
6 and 7 are checked in Redis and in Postgres. One event loop runs every call (Hypothesis
is synchronous); each example has a launch and Redis prefix of its own.
FAIRDROP_SM_EXAMPLES sets the number of examples (default 500).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections import Counter
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
import pytest
from hypothesis import HealthCheck, settings, stateful
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from service import errors
from service.admin.allocations import set_allocation
from service.clock import FakeClock
from service.deps import Deps
from service.infra import db
from service.infra.keys import pair
from service.infra.redis import Redis, create_redis
from service.infra.settings import Settings
from service.stock import holds as stock_holds
from service.stock.codes import normalize_code
from service.stock.confirm import confirm, find_by_hold
from service.stock.rebuild import rebuild
from service.stock.reconciler import reconcile
from service.stock.reservations import cancel
from tests.stock_kit import PAIRS, CommitLost, EndFails, check_stock, read_stock, seed_launch

T = TypeVar("T")
ACTOR = {"actor": "test", "channel": "admin"}
HOLD_MS, CONFIRM_MS = 10_000, 2_000  # a confirm deadline shorter than holds: both paths
PAIR_KEYS = [pair(s, k) for s, k in PAIRS]
EXAMPLES = int(os.environ.get("FAIRDROP_SM_EXAMPLES", "500"))
KINDS = ["reservation.confirmed", "reservation.cancelled"]
KINDS += ["allocation.raised", "allocation.lowered"]  # the event rows counted (invariant 7)
FAULTS = ["dies_after_begin", "end_fails", "commit_lost", ""]  # "" last: drawn less often
OUTCOMES: Counter[str] = Counter()  # what the run exercised, printed at the end


@dataclass
class Harness:
    """What every example shares: one loop, one pool, one Redis client, one schema."""

    loop: asyncio.AbstractEventLoop
    settings: Settings
    pool: db.Pool
    redis: Redis


@dataclass
class Claim:
    """A hold and the reservation it became: one unit and one of the shopper's slots."""

    hold_id: str
    reg: int
    pair: str
    unit: int
    slot: int
    expires: int
    deadline: int | None = None  # set while the hold is *confirming*
    res: int | None = None  # the reservation's id, once Postgres committed it
    live: bool = False  # the reservation is live (not cancelled)


class StockMachine(RuleBasedStateMachine):
    harness: Harness

    def __init__(self) -> None:
        super().__init__()
        h, self.clock, tag = self.harness, FakeClock(), secrets.token_hex(4)
        self.lid = f"sm-{tag}"
        s = msgspec.structs.replace(h.settings, redis_prefix=f"sm{tag}:")
        self.deps = Deps(settings=s, pool=h.pool, redis=h.redis, clock=self.clock)
        pools = {"end_fails": h.pool, "commit_lost": CommitLost.around(h.pool)}
        self.faulty = {  # fault -> the Deps that inject it
            f: Deps(settings=s, pool=p, redis=h.redis, clock=self.clock) for f, p in pools.items()
        }
        self.faulty["end_fails"].scripts = EndFails(h.redis)
        self.regs: list[int] = []
        self.limit = 1
        self.units: dict[str, set[int]] = {}
        self.holds: dict[str, Claim] = {}  # holds Redis has: live, due, or confirming
        self.gone: list[Claim] = []  # holds released, expired or lost, never confirmed
        self.res: dict[int, Claim] = {}  # by reservation id
        self.events: Counter[str] = Counter()

    def run(self, call: Awaitable[T]) -> T:
        return self.harness.loop.run_until_complete(call)

    def expect(self, call: Awaitable[T], error: type[Exception] | None) -> T | None:
        """Run `call`: it must raise exactly `error` (a domain error) or, if None, succeed."""
        name = getattr(call, "__qualname__", "call")
        try:
            result = self.run(call)
        except errors.FairdropError as exc:
            assert type(exc) is error, f"{name}: expected {error}, got {exc!r}"
            OUTCOMES[f"{name}: {type(exc).__name__}"] += 1
            return None
        assert error is None, f"{name}: expected {error.__name__}, got {result!r}"
        OUTCOMES[f"{name}: ok"] += 1
        return result

    def teardown(self) -> None:
        self.run(self.deps.redis.delete(*self.deps.keys(self.lid).all))  # rows go with schema

    def now(self) -> int:
        return self.clock.now_ms()

    def live_res(self) -> list[Claim]:
        return [c for c in self.res.values() if c.live]

    def free(self, p: str) -> set[int]:
        taken = {c.unit for c in [*self.holds.values(), *self.live_res()] if c.pair == p}
        return self.units[p] - taken

    def slots(self, reg: int) -> set[int]:
        return {c.slot for c in [*self.holds.values(), *self.live_res()] if c.reg == reg}

    def held(self, due: bool) -> list[Claim]:
        """Holds in state *held* whose time is up (`due`) or not."""
        now = self.now()
        return [c for c in self.holds.values() if c.deadline is None and (c.expires <= now) == due]

    def drop(self, c: Claim) -> None:
        del self.holds[c.hold_id]
        if c.res is None:
            self.gone.append(c)

    def drop_due(self) -> int:
        """What the scripts' expiry pass does: due holds give back their unit and slot."""
        due = self.held(due=True)
        for c in due:
            self.drop(c)
        return len(due)

    @initialize(
        limit=st.integers(1, 3),
        allocs=st.lists(st.integers(0, 4), min_size=4, max_size=4),
        rush=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3), st.booleans()), max_size=8),
    )
    def launch(self, limit: int, allocs: list[int], rush: list[tuple[int, int, bool]]) -> None:
        """A selling launch, then an opening rush of reserves, some confirmed at once."""
        self.limit = limit
        self.units = {p: set(range(n)) for p, n in zip(PAIR_KEYS, allocs, strict=True)}
        self.regs = self.run(seed_launch(self.deps, self.lid, HOLD_MS // 1000, limit, allocs))
        for r, p, confirmed in rush:
            c = self._reserve(r, p)
            if c is not None and confirmed:
                self._confirm(c, fault="")

    @rule(r=st.integers(0, 5), p=st.integers(0, 3))
    def reserve(self, r: int, p: int) -> None:
        self._reserve(r, p)

    def _reserve(self, r: int, p: int) -> Claim | None:
        reg, (store, sku), key = self.regs[r], PAIRS[p], PAIR_KEYS[p]
        self.drop_due()  # reserve expires due holds before it looks
        used, free = self.slots(reg), self.free(key)
        full = len(used) >= self.limit
        error = errors.LimitReached if full else None if free else errors.SoldOut
        hold = self.expect(stock_holds.reserve(self.deps, self.lid, reg, store, sku), error)
        if hold is None:
            return None
        assert hold.unit_no == min(free), (hold, free)  # the lowest free unit
        assert hold.expires_ms == self.now() + HOLD_MS
        slot = min(set(range(self.limit)) - used)
        c = self.holds[hold.hold_id] = Claim(
            hold.hold_id, reg, key, hold.unit_no, slot, hold.expires_ms
        )
        return c

    @precondition(lambda self: self.holds)
    @rule(i=st.integers(0, 99), wrong_owner=st.booleans())
    def release(self, i: int, wrong_owner: bool) -> None:
        c = list(self.holds.values())[i % len(self.holds)]
        reg = self.regs[(self.regs.index(c.reg) + 1 + i % 5) % 6] if wrong_owner else c.reg
        self.drop_due()
        error = (
            errors.HoldNotFound  # not this shopper's
            if wrong_owner
            else errors.HoldExpired  # it expired just now
            if c.hold_id not in self.holds
            else None
            if c.deadline is None
            else errors.Conflict
        )
        self.expect(stock_holds.release(self.deps, self.lid, reg, c.hold_id), error)
        if error is None:
            self.drop(c)

    @precondition(lambda self: self.holds)
    @rule(i=st.integers(0, 99), fault=st.sampled_from(FAULTS))
    def confirm_hold(self, i: int, fault: str) -> None:
        """Confirm a hold, or retry a confirming one. Faults: Redis unreachable at
        `confirm_end`; the commit's reply lost (a timeout); the process dies after
        `confirm_begin` (nothing reaches Postgres)."""
        self._confirm(list(self.holds.values())[i % len(self.holds)], fault)

    def _confirm(self, c: Claim, fault: str) -> None:
        due = c.deadline is None and c.expires <= self.now()  # due, not yet swept
        if fault == "dies_after_begin":  # of confirm, only confirm_begin ran
            deadline = self.now() + CONFIRM_MS
            args = (self.now(), deadline, c.hold_id, c.reg)
            [reply] = self.run(
                self.deps.scripts.run("confirm_begin", self.deps.keys(self.lid), *args)
            )
            assert reply == (
                ["hold-expired"] if due else ["ok", *c.pair.split(":"), c.unit, c.slot]
            )
            c.deadline = c.deadline or deadline
        elif due:
            self.expect(confirm(self.deps, self.lid, c.reg, c.hold_id), errors.HoldExpired)
        else:
            self._commit(c, fault)
        if due:
            self.drop(c)

    def _commit(self, c: Claim, fault: str) -> None:
        res = self.expect(
            confirm(self.faulty.get(fault, self.deps), self.lid, c.reg, c.hold_id), None
        )
        assert res is not None and res.status == "confirmed" and res.id == (c.res or res.id)
        assert (res.registration_id, res.hold_id) == (c.reg, c.hold_id)
        assert pair(res.store_id, res.sku_id) == c.pair and normalize_code(res.code) == res.code
        if c.res is None:
            c.res, c.live, self.res[res.id] = res.id, True, c
            self.events["reservation.confirmed"] += 1
        if fault != "end_fails":  # a lost reply is no failure: Postgres has the reservation
            del self.holds[c.hold_id]
        elif c.deadline is None:
            c.deadline = self.now() + CONFIRM_MS

    @precondition(lambda self: self.gone or self.res)
    @rule(i=st.integers(0, 99))
    def confirm_again(self, i: int) -> None:
        """Confirm an old hold: its reservation if it has one (nothing new), else expired
        (released, expired or lost in a rebuild: the audit trail remembers it)."""
        old = [*self.gone, *self.res.values()]
        c = old[i % len(old)]
        res = self.expect(
            confirm(self.deps, self.lid, c.reg, c.hold_id), None if c.res else errors.HoldExpired
        )
        if res is not None:
            assert res.id == c.res and res.status == ("confirmed" if c.live else "cancelled")
            self.holds.pop(c.hold_id, None)  # a retry settles a hold left confirming

    @rule(seconds=st.one_of(st.integers(1, 9), st.integers(10, 30), st.none()), sweep=st.booleans())
    def advance_clock(self, seconds: int | None, sweep: bool) -> None:
        """A small step, one past `hold_seconds`, or (None) exactly to the next expiry or
        confirm deadline (both are due at that very millisecond); then maybe the sweeper's
        reconciler runs at once."""
        now = self.now()
        ahead = [t for c in self.holds.values() if (t := c.deadline or c.expires) > now]
        self.clock.set(min(ahead, default=now) if seconds is None else now + seconds * 1000)
        if sweep:
            self.reconcile()

    @rule(p=st.integers(0, 3), delta=st.integers(-3, 3))
    def change_allocation(self, p: int, delta: int) -> None:
        (store, sku), key = PAIRS[p], PAIR_KEYS[p]
        units = self.units[key]
        allocated = max(0, len(units) + delta)
        if allocated < len(units):
            self.drop_due()  # withdrawing expires due holds first, whatever the outcome
        free, lowering = sorted(self.free(key)), len(units) - allocated
        error = errors.AllocationTooLow if lowering > len(free) else None
        change = set_allocation(self.deps, self.lid, store, sku, allocated, **ACTOR)
        count = self.expect(change, error)
        if count is None:
            return
        if lowering > 0:
            units -= set(free[len(free) - lowering :])  # the highest free units go
            self.events["allocation.lowered"] += 1
        elif lowering < 0:
            top = max(units, default=-1)
            units |= set(range(top + 1, top + 1 - lowering))
            self.events["allocation.raised"] += 1
        assert (count.allocated, count.available) == (allocated, len(self.free(key)))

    @precondition(lambda self: self.res)
    @rule(i=st.integers(0, 99))
    def cancel_reservation(self, i: int) -> None:
        c = list(self.res.values())[i % len(self.res)]
        assert c.res is not None
        out = self.expect(
            cancel(self.deps, self.lid, c.res, registration_id=c.reg, **ACTOR),
            None if c.live else errors.Conflict,
        )
        if out is not None:
            assert out.status == "cancelled"
            c.live = False
            self.events["reservation.cancelled"] += 1
            self.holds.pop(c.hold_id, None)  # a hold still confirming it is settled too

    @rule(job=st.sampled_from(["reconcile", "expire", "rebuild"]))
    def background(self, job: str) -> None:
        """The sweeper's jobs, or (rarely) Redis lost and rebuilt from Postgres."""
        {"expire": self.expire, "reconcile": self.reconcile, "rebuild": self.rebuild}[job]()

    def expire(self) -> None:
        due = self.drop_due()
        assert self.run(stock_holds.expire(self.deps, self.lid)) == due

    def rebuild(self) -> None:
        """Every hold is lost with Redis; its unit is free again."""
        report = self.run(rebuild(self.deps, self.lid))
        for c in list(self.holds.values()):
            self.drop(c)
        assert report.confirmed == len(self.live_res())
        assert report.allocated == sum(len(u) for u in self.units.values())

    def reconcile(self) -> None:
        """Every confirm overdue is finished: its reservation made, if no try made it."""
        overdue = [c for c in self.holds.values() if c.deadline and c.deadline <= self.now()]
        want = {"confirmed": len(overdue), "aborted": 0, "left": 0}
        assert self.run(reconcile(self.deps, self.lid)) == want
        for c in overdue:
            if c.res is None:
                res = self.run(find_by_hold(self.deps, self.lid, c.hold_id))
                assert res is not None and res.registration_id == c.reg
                c.res, c.live, self.res[res.id] = res.id, True, c
                self.events["reservation.confirmed"] += 1
            self.drop(c)
        OUTCOMES[f"reconcile: {want}"] += 1

    @invariant()
    def stock_is_consistent(self) -> None:
        """Invariants 1, 2, 3 and 6 in Redis and Postgres; both agree with the model."""
        s = self.run(read_stock(self.deps, self.lid))
        check_stock(s)
        assert s.units == {(p, u) for p, us in self.units.items() for u in us}
        assert set(s.free) == {(p, u) for p in PAIR_KEYS for u in self.free(p)}
        want: dict[str, dict[str, Any]] = {}
        for c in self.holds.values():
            store, sku = c.pair.split(":")
            state = "held" if c.deadline is None else "confirming"
            h = {"r": str(c.reg), "s": store, "k": sku, "u": c.unit, "l": c.slot, "e": c.expires}
            want[c.hold_id] = {**h, "st": state, **({"d": c.deadline} if c.deadline else {})}
        modelled = {"r", "s", "k", "u", "l", "e", "st", "d"}  # fields the model knows
        assert {
            i: {k: v for k, v in h.items() if k in modelled} for i, h in s.holds.items()
        } == want
        assert s.expiry == {c.hold_id: c.expires for c in self.held(True) + self.held(False)}
        live = {r["id"]: (r["reg"], r["pair"], r["unit_no"], r["slot"]) for r in s.live}
        assert live == {c.res: (c.reg, c.pair, c.unit, c.slot) for c in self.live_res()}
        assert {r["id"] for r in s.res} == set(self.res)
        # 7: every confirm, cancel and allocation change left exactly one event row.
        assert {k: s.events.get(k, 0) for k in KINDS} == {k: self.events[k] for k in KINDS}


@pytest.fixture
def harness(base_settings: Settings) -> Iterator[Harness]:
    loop, schema = asyncio.new_event_loop(), f"sm_{secrets.token_hex(4)}"
    assert base_settings.database_url is not None and base_settings.redis_url is not None
    loop.run_until_complete(db.migrate_url(base_settings.database_url, schema))
    s = msgspec.structs.replace(
        base_settings, db_schema=schema, confirm_deadline_seconds=CONFIRM_MS / 1000
    )
    pool = loop.run_until_complete(db.create_pool(s, min_size=1, max_size=4))
    redis = create_redis(base_settings.redis_url)
    try:
        yield Harness(loop, s, pool, redis)
    finally:
        loop.run_until_complete(pool.execute(f'DROP SCHEMA "{schema}" CASCADE'))
        loop.run_until_complete(pool.close())
        loop.run_until_complete(redis.aclose())
        loop.close()


def test_stock_engine_keeps_its_invariants(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, "service.stock.confirm")  # injected faults log warnings
    machine = type("BoundStockMachine", (StockMachine,), {"harness": harness})
    limits = settings(
        max_examples=EXAMPLES,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        print_blob=True,  # a failure prints @reproduce_failure(...) to replay it exactly
    )
    stateful.run_state_machine_as_test(machine, settings=limits)  # type: ignore[no-untyped-call]
    print("exercised:", dict(sorted(OUTCOMES.items())))
