"""Everything a rehearsal saw, in one struct: what the analysis and the report read
(and what `evidence.msgpack` keeps beside the report)."""

from __future__ import annotations

from typing import Any

import msgspec

from service.rehearse.desk import DeskResult
from service.rehearse.monitor import Sample
from service.rehearse.options import Options
from service.rehearse.records import CrowdResult, Timeline
from service.rehearse.setup import Prepared


def _no_crowd() -> CrowdResult:
    return CrowdResult(calls=[], journeys=[], bots=[], cpu_s=0.0, wall_s=0.0)


class Evidence(msgspec.Struct, kw_only=True):
    options: Options
    prepared: Prepared
    timeline: Timeline
    setup_s: float
    local: bool
    """The rehearsal started the servers (Postgres and CPU figures exist)."""
    redis_owned: bool = False
    """Redis served this rehearsal alone (its command time is the launch's)."""
    server_log: str = ""
    crowd: CrowdResult = msgspec.field(default_factory=_no_crowd)
    samples: list[Sample] = msgspec.field(default_factory=list)
    monitor_errors: list[str] = msgspec.field(default_factory=list)
    desk: DeskResult | None = None
    stock: dict[str, Any] | None = None
    """The admin stock endpoint's answer after the run."""
    seed_hash: str | None = None
    """The draw's commitment as saved before the draw."""
    draw_order: list[str] | None = None
    draw_problems: list[str] = msgspec.field(default_factory=list)
    registered_emails: list[str] = msgspec.field(default_factory=list)
    bot_emails: dict[str, int] = msgspec.field(default_factory=dict)
    """Each dup-signup bot's spellings of its one address → the bot."""
    transitions: dict[str, float] = msgspec.field(default_factory=dict)
    """State → when the launch entered it (epoch seconds), from its audit events."""
    postgres: tuple[int, int] | None = None
    """(oversold, double booked), read from Postgres."""
    crowd_cpu: list[tuple[float, float]] = msgspec.field(default_factory=list)
    """(time, cores) the crowd's processes used, every few seconds."""
    notes: list[str] = msgspec.field(default_factory=list)
