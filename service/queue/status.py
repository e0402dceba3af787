"""Where am I in the queue? Answered from memory, with no Redis round trip.

Each process keeps, per launch, the admission counter, the measured admission rate
and the sold-out flag, refreshed from Redis every ~200 ms by running the `admit`
script (which also advances admission). The ticket carries the rank; the rest is
arithmetic.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import deque
from typing import Literal

import msgspec

from service.deps import Deps
from service.queue import lifecycle, lottery, turns
from service.queue.eta import Pace, eta_seconds, measure
from service.queue.leave import LEFT
from service.queue.polls import next_poll, poll_cap, prequeue_poll
from service.queue.tickets import PREQUEUE, TicketClaims
from service.stock.rebuild import ensure_loaded
from service.store import queue as qstore

log = logging.getLogger(__name__)

State = Literal["prequeue", "waiting", "admitted", "lapsed", "done", "sold_out", "closed", "left"]
STALE_SECONDS = 5.0
"""A launch's view not refreshed for this long (its refreshes fail) is not answered from."""
REFRESH_SECONDS = 0.2
"""How often each process refreshes its view of the queues (and admits)."""
LOAD_EVERY_SECONDS = 1.0
"""How often it looks at Postgres for the launches' states: a launch that opens, draws or
closes is seen by every worker within about a second."""
_HISTORY = 3000  # refreshes kept to date admissions (10 minutes at 200 ms)


class Snapshot(msgspec.Struct, frozen=True):
    phase: str
    qlen: int
    admitted: int
    sold_out: bool
    active: int
    lapsed: int
    window_ms: int
    at_ms: int
    restored_ms: int = 0
    """When Redis last lost this queue and it was rebuilt (0: never)."""
    set_rate: float = 0.0
    """Admissions per second the operator set."""
    cap: int = 0
    """At most this many active (admitted and not done) at once."""
    free: int = 0
    """Units free to hold, all stores and models together."""
    choosing: int = 0
    """Admitted and not holding yet (each is offered one of the free units)."""
    admitting: bool = False
    """Drawn and selling: admission moves."""
    left: int = 0
    """Places given up so far (`lua/leave.lua`)."""
    loaded: bool = True
    """Redis has the launch's stock (a Redis that lost it has not rebuilt it yet)."""
    left_prequeue: int = 0
    """Registrations that left the pre-queue (until the draw gives up their ranks)."""


class QueueStatus(msgspec.Struct, frozen=True, kw_only=True):
    state: State
    rank: int | None
    position: int | None
    """1 = next in line; None when not waiting."""
    ahead: int | None
    eta_seconds: float | None
    next_poll_seconds: float
    admitted_until_ms: int | None = None
    queue_length: int
    measured_rate: float | None
    message: str
    """What this means for the shopper and what to do next, in plain words."""


MESSAGES: dict[str, str] = {
    "prequeue": "You are checked in. The order is drawn when the sale starts; arriving"
    " early gives no advantage.",
    "waiting": "You are in the queue. Keep this page open; we admit people in order.",
    "admitted": "It is your turn: choose a store and hold your unit before your time runs out.",
    "lapsed": turns.LAPSED,
    "done": "Your turn is over. What you reserved is under “My reservation”.",
    "sold_out": "Everything is held or sold. Stay in the queue: units that come back"
    " (expired holds, cancellations) are offered in queue order.",
    "closed": "The sale is closed.",
    "left": LEFT,
}
STILL = (
    "Nobody is being let in right now: the sale has not started, or it is paused. When it"
    " runs, people are let in in the order of the queue; you keep your place, so keep this"
    " page open."
)
"""A place in a queue that admission does not move (not selling, or paused)."""


def snapshot_from_reply(reply: qstore.AdmitReply, at_ms: int) -> Snapshot:
    return Snapshot(
        phase=reply.phase,
        qlen=reply.qlen,
        admitted=reply.admitted,
        sold_out=reply.sold_out,
        active=reply.active,
        lapsed=reply.lapsed,
        window_ms=reply.window_ms,
        at_ms=at_ms,
        restored_ms=reply.restored_ms,
        set_rate=reply.set_rate_milli / 1000,
        cap=reply.cap,
        free=reply.free,
        choosing=reply.choosing,
        admitting=reply.admitting,
        left=reply.left,
        loaded=reply.loaded,
        left_prequeue=reply.left_prequeue,
    )


def left_status(rank: int | None, snap: Snapshot | None) -> QueueStatus:
    """What a shopper who gave up their place is told."""
    return QueueStatus(
        state="left",
        rank=rank,
        position=None,
        ahead=None,
        eta_seconds=None,
        next_poll_seconds=30.0,
        queue_length=0 if snap is None else snap.qlen,
        measured_rate=None,
        message=LEFT,
    )


def compute(
    claims: TicketClaims,
    snap: Snapshot,
    now_ms: int,
    admitted_at_ms: int | None,
    closed: bool,
    pace: Pace | None = None,
    sale_ms: int | None = None,
    left: bool = False,
) -> QueueStatus:
    """The status of the ticket's holder, from the snapshot alone (and the sale's
    start, `sale_ms`, for the pre-queue)."""
    rank = claims.rank
    cap = poll_cap(snap.window_ms)

    def status(
        state: State,
        *,
        ahead: int | None = None,
        eta: float | None = None,
        poll: float,
        until: int | None = None,
    ) -> QueueStatus:
        return QueueStatus(
            state=state,
            rank=None if rank < 0 else rank,
            position=None if ahead is None or state == "admitted" else ahead + 1,
            ahead=ahead,
            eta_seconds=eta,
            next_poll_seconds=poll,
            admitted_until_ms=until,
            queue_length=snap.qlen,
            measured_rate=None if pace is None else round(pace.per_second, 2),
            message=MESSAGES[state],
        )

    if closed:
        return status("closed", poll=30.0)
    if left:
        return status("left", poll=30.0)
    if rank == PREQUEUE or snap.phase != "drawn":
        return status("prequeue", poll=prequeue_poll(claims.registration_id, now_ms, sale_ms, cap))
    if rank < snap.admitted:
        until = None if admitted_at_ms is None else admitted_at_ms + snap.window_ms
        lapsed = until is not None and now_ms >= until
        return status("lapsed" if lapsed else "admitted", ahead=0, eta=0.0, poll=5.0, until=until)
    ahead = rank - snap.admitted
    if snap.sold_out:
        return status("sold_out", ahead=ahead, poll=min(10.0, cap))
    eta = eta_seconds(pace, rank, now_ms)
    waiting = status("waiting", ahead=ahead, eta=eta, poll=next_poll(ahead, eta, cap))
    return waiting if snap.admitting else msgspec.structs.replace(waiting, message=STILL)


class QueueWatch:
    """The process's view of every active launch's queue."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.snapshots: dict[str, Snapshot] = {}
        self.closed: set[str] = set()
        self.active: set[str] = set()  # launches whose queue exists (or should)
        self.selling: set[str] = set()  # launches whose stock Redis must have
        self.lotteries: set[str] = set()  # lottery launches whose waiting list can move
        self.sale_starts: dict[str, int] = {}  # ms, for launches whose start is set
        self.launches: list[str] | None = None  # active launches, as last loaded
        self._refreshed: dict[str, float] = {}  # monotonic time of each launch's last refresh
        # Per launch: the ranks given up, as far as learnt (the count learnt so far).
        self._left: dict[str, tuple[int, set[int]]] = {}
        # Per launch: the registrations that left the pre-queue (their count, them).
        self._left_pre: dict[str, tuple[int, set[int]]] = {}
        # Per launch: when (ms) the admitted count changed, and to what, oldest first.
        self._times: dict[str, deque[int]] = {}
        self._counts: dict[str, deque[int]] = {}
        # Per launch: since when admission has run as it does now (drawn and selling, at
        # this rate and cap), and that; the pace is measured only over that time.
        self._since: dict[str, tuple[int, tuple[bool, float, int]]] = {}

    async def refresh(self, launch_id: str) -> Snapshot:
        now = self.deps.clock.now_ms()
        keys = self.deps.keys(launch_id)
        snap = snapshot_from_reply(await qstore.admit(self.deps.scripts, keys, now_ms=now), now)
        lost_queue = snap.phase == "none" and launch_id in self.active
        lost_stock = not snap.loaded and launch_id in self.selling
        if lost_queue or lost_stock:
            # Redis lost the launch: its queue and its stock come back from Postgres here,
            # so admission (which waits for stock to offer) resumes by itself, with no
            # hold needed to rebuild the stock.
            if lost_queue and await lifecycle.restore(self.deps, launch_id):
                log.warning("restored the queue of %s from Postgres", launch_id)
            if launch_id in self.selling:
                await ensure_loaded(self.deps, launch_id)
            reply = await qstore.admit(self.deps.scripts, keys, now_ms=now)
            snap = snapshot_from_reply(reply, now)
        self.snapshots[launch_id] = snap
        self._refreshed[launch_id] = time.monotonic()
        if snap.left != self._left.get(launch_id, (0, None))[0]:
            await self._learn_left(launch_id, snap.left)
        if snap.left_prequeue != self._left_pre.get(launch_id, (0, None))[0]:
            members = await qstore.left_prequeue(self.deps.scripts, keys)
            self._left_pre[launch_id] = (snap.left_prequeue, members)
        times = self._times.setdefault(launch_id, deque(maxlen=_HISTORY))
        counts = self._counts.setdefault(launch_id, deque(maxlen=_HISTORY))
        if not counts or counts[-1] != snap.admitted:
            times.append(now)
            counts.append(snap.admitted)
        settings = (snap.admitting, snap.set_rate, snap.cap)
        if self._since.get(launch_id, (0, None))[1] != settings:
            self._since[launch_id] = (now, settings)
        return snap

    async def _learn_left(self, launch_id: str, count: int) -> None:
        """Fetch the ranks given up since the last look (each scored by its order)."""
        seen, ranks = self._left.get(launch_id, (0, set()))
        if count < seen:  # the queue was rebuilt: learn it all again
            seen, ranks = 0, set()
        new = await qstore.left_since(self.deps.scripts, self.deps.keys(launch_id), seen)
        ranks.update(rank for rank, _ in new)
        self._left[launch_id] = (max([seen, *(order for _, order in new)]), ranks)

    def has_left(self, claims: TicketClaims) -> bool:
        """The ticket's holder gave their place up (in line, in a turn, or from the
        pre-queue: then the ticket has no rank, and the draw has not given it up yet)."""
        if claims.rank == PREQUEUE:
            known = self._left_pre.get(claims.launch_id)
            return known is not None and claims.registration_id in known[1]
        known = self._left.get(claims.launch_id)
        return known is not None and claims.rank in known[1]

    def pace(self, launch_id: str) -> Pace | None:
        """Admission's measured pace (None until measured, or while it does not run)."""
        snap, since = self.snapshots.get(launch_id), self._since.get(launch_id)
        if snap is None or since is None or not snap.admitting:
            return None
        times, counts = self._times[launch_id], self._counts[launch_id]
        return measure(times, counts, self.deps.clock.now_ms(), since[0], snap.set_rate)

    def admitted_at(self, launch_id: str, rank: int) -> int | None:
        """When this process first saw `rank` admitted (None if before its memory)."""
        counts = self._counts.get(launch_id)
        if not counts:
            return None
        i = bisect.bisect_right(counts, rank)  # the first change that admitted `rank`
        if i == 0 or i >= len(counts):  # admitted before our memory, or not yet
            return None
        return self._times[launch_id][i]

    async def status(self, claims: TicketClaims) -> QueueStatus:
        snap = self.snapshots.get(claims.launch_id)
        fresh = self._refreshed.get(claims.launch_id, 0.0) > time.monotonic() - STALE_SECONDS
        if snap is None or not fresh:
            # The first ask for this launch in this process, or its refreshes have failed
            # for a while (Redis out): ask Redis now, rather than answer from a view that
            # stopped moving (an outage is a 503 then, and the client comes back).
            snap = await self.refresh(claims.launch_id)
        now = self.deps.clock.now_ms()
        status = compute(
            claims,
            snap,
            now,
            self.admitted_at(claims.launch_id, claims.rank),
            claims.launch_id in self.closed,
            self.pace(claims.launch_id),
            self.sale_starts.get(claims.launch_id),
            self.has_left(claims),
        )
        if status.state in ("admitted", "lapsed"):
            # Memory cannot see a turn that ended early or goes on after a confirmation:
            # ask, for admitted ranks only (a few thousand shoppers at most).
            turn = await turns.turn(
                self.deps, claims.launch_id, claims.rank, claims.registration_id
            )
            over = turn.state != "admitted"
            return msgspec.structs.replace(
                status,
                state=turn.state,
                message=turn.message,
                admitted_until_ms=turn.until_ms or status.admitted_until_ms,
                next_poll_seconds=30.0 if over else status.next_poll_seconds,
            )
        return status

    def counters(self) -> dict[str, tuple[int, int, int]]:
        return {
            launch_id: (snap.qlen, snap.admitted, snap.lapsed)
            for launch_id, snap in self.snapshots.items()
            if snap.phase == "drawn"
        }

    async def move_waiting_lists(self) -> None:
        """Lottery launches: invite one from the waiting list per lapse or cancellation."""
        for launch_id in self.lotteries:
            snap = self.snapshots.get(launch_id)
            if snap is not None:
                await lottery.advance(self.deps, launch_id, snap.lapsed)

    async def load_active(self) -> list[str]:
        """Learn which launches have a queue; returns those still admitting."""
        rows = await self.deps.pool.fetch(
            "SELECT id, state, fairness_mode, sale_starts_at FROM launches WHERE state IN"
            " ('checkin_open', 'selling', 'sold_out', 'closed', 'pickup', 'archived')"
        )
        self.sale_starts = {
            r["id"]: int(r["sale_starts_at"].timestamp() * 1000)
            for r in rows
            if r["sale_starts_at"] is not None
        }
        self.closed = {r["id"] for r in rows if r["state"] in ("closed", "pickup", "archived")}
        self.active = {r["id"] for r in rows if r["state"] in lifecycle.QUEUE_STATES}
        self.selling = {r["id"] for r in rows if r["state"] in ("selling", "sold_out")}
        self.lotteries = {
            r["id"]
            for r in rows
            if r["fairness_mode"] == "lottery" and r["state"] in ("selling", "sold_out")
        }
        self.launches = launches = [r["id"] for r in rows if r["id"] not in self.closed]
        return launches

    async def refresh_all(self) -> None:
        """Refresh every active launch this process knows of, and those asked about since
        the last look (a launch that opened meanwhile is refreshed from its first poll).
        The first refresh learns the active launches first: admission starts at once."""
        if self.launches is None:
            await self.load_active()
        for launch_id in dict.fromkeys([*(self.launches or ()), *self.snapshots]):
            if launch_id not in self.closed:
                await self.refresh(launch_id)

    async def save_counters(self) -> None:
        """What a restore of the queues would start from."""
        await lifecycle.save_counters(self.deps, self.counters())
