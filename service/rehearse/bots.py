"""Bots: what a launch must shrug off. Each records every answer it got; what it
should never have got goes into its notes, which the report counts.

- `dup_signup`: one address signed up in the spellings de-duplication must see through
  (the rehearsal counts the registrations they made afterwards: at most one).
- `replay`: checks in again and again (the same place every time), then holds with the
  same ticket several times and confirms every hold it got (at most the limit).
- `hammer`: polls its status as fast as it can (the per-ticket limit answers 429).
- `early_hold`: tries to hold straight after checking in, before its turn (403).
"""

from __future__ import annotations

import time

from service.rehearse.journey import Answer, Client, pause, problem
from service.rehearse.records import Bot, BotResult, CrowdPlan

HAMMER_S = 10.0
HAMMER_GAP_S = 0.02
"""50 polls a second: 25 times the per-ticket limit, without eating the crowd's CPU."""
EARLY_TRIES = 8
REPLAY_CHECKINS = 5
REPLAY_HOLDS = 3
SLACK_S = 1.0
"""An early hold granted while its poll said more were ahead than admission (at the set
rate) could pass from that poll's sending to the hold's answer, plus this, is noted."""


class Botting:
    def __init__(self, client: Client, plan: CrowdPlan, bot: Bot, result: BotResult):
        self.c, self.b, self.r = client, bot, result
        self.api = f"/api/launches/{plan.launch_id}"
        self.stores, self.skus = plan.stores, plan.skus
        self.rate = plan.admit_rate
        self.ticket = ""

    def call(self, kind: str, method: str, path: str, token: str | None, body: object = None,
             ) -> Answer:
        answer = self.c.call(
            kind, method, self.api + path, token=token, address=self.b.address, body=body,
            bot=True,
        )
        label = f"{kind} {answer.status}"
        self.r.answers[label] = self.r.answers.get(label, 0) + 1
        if answer.status == 0 or (answer.status >= 500 and answer.status != 503):
            self.r.notes.append(f"{label} {problem(answer)}".strip())
        return answer

    def run(self) -> None:
        if not pause(self.c, self.b.arrive_at - time.time()):
            return
        kind = self.b.kind
        if kind == "dup_signup":
            for email in self.b.emails:
                self.call("signup", "POST", "/registrations", None, {"email": email, "name": "B"})
            return
        if not self.check_in():
            return
        if kind == "hammer":
            self.hammer()
        elif kind == "early_hold":
            self.early_hold()
        elif kind == "replay":
            self.replay()

    def check_in(self) -> bool:
        for _ in range(10):
            answer = self.call("checkin", "POST", "/queue/checkin", self.b.token)
            if answer.status == 200:
                self.ticket = answer.body["ticket"]
                return True
            if not pause(self.c, answer.retry_after or 1.0):
                break
        return False

    def status(self) -> dict[str, object] | None:
        answer = self.call("status", "GET", "/queue/status", self.ticket)
        if answer.status != 200:
            return None
        if answer.body.get("ticket"):
            self.ticket = answer.body["ticket"]
        status: dict[str, object] = answer.body["status"]
        return status

    def hammer(self) -> None:
        end = min(time.time() + HAMMER_S, self.c.stop_at)
        while time.time() < end:
            self.status()
            time.sleep(HAMMER_GAP_S)

    def hold(self) -> str | None:
        body = {"store_id": self.stores[0], "sku_id": self.skus[0]}
        answer = self.call("hold", "POST", "/holds", self.ticket, body)
        if answer.status in (200, 201):
            return str(answer.body["hold_id"])
        return None

    def early_hold(self) -> None:
        for _ in range(EARLY_TRIES):
            asked = time.time()
            st = self.status()
            ahead = st.get("ahead") if st else None
            hold_id = self.hold()
            if hold_id is not None:
                passable = self.rate * (time.time() - asked + SLACK_S)
                if isinstance(ahead, int) and ahead > passable:
                    self.r.notes.append(f"hold granted with {ahead} ahead")
                self.call("release", "DELETE", f"/holds/{hold_id}", self.ticket)
                return
            if not pause(self.c, 0.3):
                return

    def replay(self) -> None:
        for _ in range(REPLAY_CHECKINS - 1):
            answer = self.call("checkin", "POST", "/queue/checkin", self.b.token)
            if answer.status == 200 and answer.body.get("rank") is not None:
                self.r.ranks.append(int(answer.body["rank"]))
        while time.time() < self.c.stop_at:
            st = self.status()
            rank = st.get("rank") if st else None
            if isinstance(rank, int):
                self.r.ranks.append(rank)
            state = st.get("state") if st else None
            if state == "admitted":
                break
            if state in ("lapsed", "done", "closed", "sold_out"):
                return
            if not pause(self.c, 1.0):
                return
        holds = [h for h in (self.hold() for _ in range(REPLAY_HOLDS)) if h is not None]
        for hold_id in holds:
            answer = self.call("confirm", "POST", f"/holds/{hold_id}/confirm", self.ticket)
            if answer.status in (200, 201):
                self.r.answers["confirmed"] = self.r.answers.get("confirmed", 0) + 1
