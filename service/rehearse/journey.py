"""A shopper's way through a launch, as a person with a phone would go: check in, wait
(polling when the service asks), choose, hold, think, confirm — or not.

Runs inside a crowd process (gevent): `time.sleep` there yields to the other shoppers.
Every answer a shopper should not have had goes into the journey's notes, worded as
"<endpoint> <status> <problem type>", which the report counts.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple, Protocol

from service.rehearse.records import CrowdPlan, Journey, Poll, Shopper

PATIENCE_S = 20.0
"""How long a waiter stays while told the launch is sold out; then leaves the queue."""
TURNS = 5
"""Admitted again after every store was out: tries at most this many turns."""
RETRY_FOR_S = 60.0
"""A request that failed without guidance (no answer, a 5xx other than 503) is repeated
for this long at most. One the service asks to repeat (429, or 503 with `Retry-After`,
as nginx answers a spike it turns away) is repeated until the rehearsal stops, waiting
as `Retry-After` says: the waiting room's page does the same."""
RETRYABLE = (0, 429, 500, 502, 503, 504)
POLITE = (429, 503)


class Answer(NamedTuple):
    status: int
    body: Any
    retry_after: float | None


def retry_in(answer: Answer, first_sent: float, now: float) -> float | None:
    """Seconds to wait before repeating `answer`'s request (None: do not repeat)."""
    if answer.status not in RETRYABLE:
        return None
    if answer.status in POLITE and answer.retry_after is not None:
        return answer.retry_after
    if now - first_sent > RETRY_FOR_S:
        return None
    return answer.retry_after or 1.0


def poll_again_in(answer: Answer, next_poll: float) -> float:
    """Seconds until a waiter repeats a status poll that was not answered: no sooner than
    the last `next_poll_seconds` the service gave it, or `Retry-After`, whichever is later
    (a crowd turned away at the door comes back no faster than it polls)."""
    return max(next_poll, answer.retry_after or 1.0)


class Client(Protocol):
    """The crowd's HTTP and clock, as a journey sees them."""

    stop_at: float

    def call(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        token: str | None,
        address: str,
        body: object | None = None,
        bot: bool = False,
    ) -> Answer: ...


def problem(answer: Answer) -> str:
    """The problem type's short name (`sold-out`), or '' when the answer is not one."""
    kind = answer.body.get("type", "") if isinstance(answer.body, dict) else ""
    return str(kind).rsplit("/", 1)[-1]


def describe(kind: str, answer: Answer) -> str:
    return f"{kind} {answer.status} {problem(answer)}".strip()


def pause(client: Client, seconds: float) -> bool:
    """Sleep, but not past the stop; False when the crowd has to stop."""
    left = client.stop_at - time.time()
    time.sleep(max(0.0, min(seconds, left)))
    return time.time() < client.stop_at


def retrying(
    client: Client,
    journey: Journey | None,
    kind: str,
    method: str,
    path: str,
    *,
    token: str | None,
    address: str,
    body: object | None = None,
    bot: bool = False,
) -> Answer:
    """A call repeated while `retry_in` says so; a 5xx other than 503 (or no answer)
    is noted, then retried too."""
    first = time.time()
    while True:
        answer = client.call(kind, method, path, token=token, address=address, body=body, bot=bot)
        if answer.status not in RETRYABLE:
            return answer
        if journey is not None and answer.status not in POLITE:
            journey.notes.append(describe(kind, answer))
        wait = retry_in(answer, first, time.time())
        if wait is None or not pause(client, wait):
            return answer


class Shop:
    """One shopper's journey; `run` fills in the `Journey` as it goes."""

    def __init__(self, client: Client, plan: CrowdPlan, shopper: Shopper, journey: Journey):
        self.c, self.s, self.j = client, shopper, journey
        self.api = f"/api/launches/{plan.launch_id}"
        self.ticket = ""

    def _call(self, kind: str, method: str, path: str, token: str, body: object = None) -> Answer:
        return retrying(
            self.c,
            self.j,
            kind,
            method,
            self.api + path,
            token=token,
            address=self.s.address,
            body=body,
        )

    def run(self) -> None:
        j = self.j
        if not pause(self.c, self.s.arrive_at - time.time()):
            return
        j.arrived_at, j.outcome = time.time(), "checking_in"
        answer = self._call("checkin", "POST", "/queue/checkin", self.s.token)
        if problem(answer) == "not-invited":
            j.outcome = "not_invited"  # a lottery the shopper was not drawn in
            return
        if answer.status != 200:
            j.notes.append(describe("checkin", answer))
            j.outcome = "checkin_failed"
            return
        self.ticket, j.rank = answer.body["ticket"], answer.body.get("rank")
        j.checked_in_at = time.time()
        for _ in range(TURNS):
            j.outcome = "waiting"
            turn = self.wait()
            if turn != "admitted":
                j.outcome = turn
                return
            j.outcome = "choosing"
            result = self.take_turn()
            if result != "again":
                j.outcome = result
                break
            if not pause(self.c, 2.0):
                return
        else:
            j.outcome = "sold_out"
        if j.hold_at is not None:
            self.check_mine()

    def wait(self) -> str:
        """Poll at the interval the service asks until it is this shopper's turn."""
        j, asked, sold_out_since, wait = self.j, 0.0, 0.0, 0.0
        while True:
            sent = time.time()
            if sent >= self.c.stop_at:
                return "waiting"
            answer = self.c.call(
                "status",
                "GET",
                self.api + "/queue/status",
                token=self.ticket,
                address=self.s.address,
            )
            if answer.status in RETRYABLE:
                if answer.status not in (429, 503):
                    j.notes.append(describe("status", answer))
                asked = 0.0
                if not pause(self.c, poll_again_in(answer, wait)):
                    return "waiting"
                continue
            if answer.status != 200:
                j.notes.append(describe("status", answer))
                return "refused"
            if answer.body.get("ticket"):
                self.ticket = answer.body["ticket"]  # the draw has ranked this holder
            st = answer.body["status"]
            state, wait = st["state"], float(st["next_poll_seconds"])
            j.polls.append(
                Poll(
                    sent,
                    state,
                    st["rank"],
                    st["ahead"],
                    st["eta_seconds"],
                    wait,
                    max(0.0, sent - asked) if asked else 0.0,
                )
            )
            if st["rank"] is not None:
                j.rank = st["rank"]
            if state == "admitted":
                if j.admitted_at is None:
                    j.admitted_at = time.time()
                return "admitted"
            if state in ("lapsed", "done", "closed", "left"):
                return str(state)
            if state == "sold_out":
                sold_out_since = sold_out_since or sent
                if sent - sold_out_since > PATIENCE_S:
                    self.leave()
                    return "sold_out"
            else:
                sold_out_since = 0.0
            asked = time.time() + wait
            if not pause(self.c, wait):
                return "waiting"

    def take_turn(self) -> str:
        """Choose, hold, think, confirm (or what this shopper's behaviour says)."""
        s, j = self.s, self.j
        if not pause(self.c, s.think_s):
            return "choosing"
        if s.behaviour == "abandon":
            return "abandoned"
        wanted = self.available(s.choices)
        if not wanted:
            self.leave()  # what they want is gone: the turn goes to the next at once
            return "nothing_left"
        hold: dict[str, Any] | None = None
        for store, sku in wanted:
            j.store_tries += 1
            answer = self._call(
                "hold", "POST", "/holds", self.ticket, {"store_id": store, "sku_id": sku}
            )
            if answer.status in (200, 201):
                hold, j.hold_store = answer.body, store
                break
            kind = problem(answer)
            if kind == "sold-out":
                continue  # taken since the page showed it
            if kind == "limit-reached":
                return "limit"
            j.notes.append(describe("hold", answer))
            if kind not in ("not-admitted", "launch-not-selling"):
                return "hold_refused"
            return "again"
        if hold is None:
            return "again"  # all taken meanwhile; units may come back while the turn lasts
        j.hold_at = time.time()
        return self.keep(str(hold["hold_id"]), int(hold["expires_ms"]) / 1000)

    def leave(self) -> None:
        """Give the place (or the unused turn) up, as the page's "Leave the queue" does."""
        answer = self._call("leave", "POST", "/queue/leave", self.ticket)
        if answer.status != 200:
            self.j.notes.append(describe("leave", answer))

    def available(self, choices: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The choices the launch page shows with a unit free (all, if it cannot say)."""
        answer = self._call("launch", "GET", "", self.s.token)
        if answer.status != 200:
            self.j.notes.append(describe("launch", answer))
            return choices
        free = {
            (a["store_id"], a["sku_id"]) for a in answer.body["availability"] if a["available"] > 0
        }
        return [c for c in choices if c in free]

    def keep(self, hold_id: str, expires_at: float) -> str:
        s, j = self.s, self.j
        j.outcome = "holding"
        if s.behaviour == "let_expire":
            if not pause(self.c, expires_at - time.time() + 2.0):
                return "holding"
            late = self._call("confirm", "POST", f"/holds/{hold_id}/confirm", self.ticket)
            if problem(late) != "hold-expired":  # what an expired hold must answer
                j.notes.append(describe("confirm(expired)", late))
            return "expired"
        if not pause(self.c, s.hold_think_s):
            return "holding"
        if s.behaviour == "release":
            gone = self._call("release", "DELETE", f"/holds/{hold_id}", self.ticket)
            if gone.status != 204:
                j.notes.append(describe("release", gone))
            return "released"
        j.outcome, j.confirm_sent_at = "confirming", time.time()
        answer = self._call("confirm", "POST", f"/holds/{hold_id}/confirm", self.ticket)
        if answer.status not in (200, 201):
            j.notes.append(describe("confirm", answer))
            return "confirm_failed"
        reservation = answer.body["reservation"]
        j.confirmed_at, j.reservation_id = time.time(), int(reservation["id"])
        j.code = str(reservation["code"])
        if s.behaviour != "cancel_later":
            return "confirmed"
        j.outcome = "keeping"
        if not pause(self.c, s.cancel_after_s):
            return "confirmed"
        rid = j.reservation_id
        done = self._call("cancel", "POST", f"/reservations/{rid}/cancel", self.s.token)
        if done.status != 200:
            j.notes.append(describe("cancel", done))
            return "confirmed"
        j.cancelled_at = time.time()
        return "cancelled"

    def check_mine(self) -> None:
        """What `/me` lists as live: the per-customer limit, seen from outside."""
        answer = self._call("me", "GET", "/me", self.s.token)
        if answer.status == 200:
            live = [
                r
                for r in answer.body["reservations"]
                if r["reservation"]["status"] in ("confirmed", "collected")
            ]
            self.j.live_at_end = len(live)
