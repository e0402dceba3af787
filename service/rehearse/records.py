"""What passes between the rehearsal and its crowd processes: the plan going in, the
records coming out. Plain structs only: the crowd imports this under gevent."""

from __future__ import annotations

import msgspec

KINDS: tuple[str, ...] = (
    "checkin",
    "status",
    "hold",
    "release",
    "confirm",
    "cancel",
    "me",
    "signup",
    "launch",
    "leave",
)
"""Endpoints as the report names them; a call records its kind's index."""
KIND = {name: i for i, name in enumerate(KINDS)}
SPAWN_RATE = 2000.0
"""Users a crowd process starts a second (all before the first arrival; they sleep)."""

BEHAVIOURS: dict[str, float] = {
    "buy": 0.72,  # hold at the preferred store (or another), think, confirm
    "abandon": 0.07,  # admitted, never holds: the place lapses
    "let_expire": 0.06,  # holds and walks away: the hold expires
    "release": 0.05,  # holds, then lets it go
    "cancel_later": 0.10,  # confirms, then cancels
}
BOT_KINDS: tuple[str, ...] = ("dup_signup", "replay", "hammer", "early_hold")


class Timeline(msgspec.Struct, frozen=True, kw_only=True):
    """Wall-clock seconds (epoch) of the launch's scheduled moments."""

    registration_closes_at: float
    checkin_opens_at: float
    sale_starts_at: float
    stop_at: float
    """The crowd stops here whatever it is doing (the `--duration` cap)."""


class Shopper(msgspec.Struct, frozen=True, array_like=True):
    index: int
    registration_id: int
    token: str
    address: str
    """The simulated client address, sent as X-Forwarded-For."""
    arrive_at: float
    behaviour: str
    choices: list[tuple[str, str]]
    """(store, SKU) this shopper would take, the preferred first."""
    think_s: float
    """Admitted → hold: choosing a store and model."""
    hold_think_s: float
    """Hold → confirm."""
    cancel_after_s: float


class Bot(msgspec.Struct, frozen=True, array_like=True):
    index: int
    kind: str
    address: str
    token: str
    """The shopper token of its own verified registration."""
    arrive_at: float
    emails: list[str]
    """dup_signup: variants of one address."""


class CrowdPlan(msgspec.Struct, frozen=True, kw_only=True):
    base_url: str
    launch_id: str
    timeline: Timeline
    hold_seconds: int
    window_seconds: int
    admit_rate: float
    shoppers: list[Shopper]
    bots: list[Bot]
    stores: list[str]
    skus: list[str]


class Call(msgspec.Struct, frozen=True, array_like=True):
    t: float
    """Wall time the request was sent."""
    kind: int
    status: int
    """0: no response (refused, reset, timed out)."""
    ms: float
    bot: bool


class Poll(msgspec.Struct, frozen=True, array_like=True):
    t: float
    state: str
    rank: int | None
    ahead: int | None
    eta: float | None
    next_poll: float
    late_s: float
    """How much later than the service asked this poll was sent (load engine lag)."""


class Journey(msgspec.Struct, kw_only=True):
    index: int
    registration_id: int
    behaviour: str
    arrived_at: float = 0.0
    checked_in_at: float | None = None
    rank: int | None = None
    admitted_at: float | None = None
    """When a poll first answered `admitted`."""
    hold_at: float | None = None
    hold_store: str | None = None
    confirm_sent_at: float | None = None
    confirmed_at: float | None = None
    reservation_id: int | None = None
    code: str | None = None
    cancelled_at: float | None = None
    outcome: str = "not_arrived"
    polls: list[Poll] = msgspec.field(default_factory=list)
    notes: list[str] = msgspec.field(default_factory=list)
    """Answers a shopper should not have had (status and problem type)."""
    live_at_end: int | None = None
    """Live reservations `/me` lists at the end."""
    store_tries: int = 0


class BotResult(msgspec.Struct, kw_only=True):
    index: int
    kind: str
    answers: dict[str, int] = msgspec.field(default_factory=dict)
    """`"<endpoint> <status>"` → count."""
    ranks: list[int] = msgspec.field(default_factory=list)
    notes: list[str] = msgspec.field(default_factory=list)


class CrowdResult(msgspec.Struct, kw_only=True):
    calls: list[Call]
    journeys: list[Journey]
    bots: list[BotResult]
    cpu_s: float
    """CPU the crowd process used."""
    wall_s: float


class Progress(msgspec.Struct, frozen=True, kw_only=True):
    """One line a crowd process prints each second."""

    t: float
    phases: dict[str, int]
    requests: int
    errors: int
    """No answer, or a 5xx other than 503."""
    turned_away: int = 0
    """503 with Retry-After (busy or a backend down): retried as it says."""
    cpu_s: float
