"""Rate limits kept in each worker's memory: no Redis round trip on the hot path.

A token bucket per (limit, key): `rate` tokens a second up to `burst`. With N
workers behind a balancer a client can get up to N times the rate in the worst
case; the point is to stop floods cheaply, not to meter exactly.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass

from service.errors import TooManyRequests
from service.web.params import AnyRequest

_MAX_KEYS = 100_000  # per limit; least recently seen keys are forgotten first


@dataclass(frozen=True)
class Limit:
    name: str
    rate: float
    """Tokens per second."""
    burst: float


class Limiter:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._buckets: dict[str, OrderedDict[str, tuple[float, float]]] = {}

    def check(self, limit: Limit, key: str, now: float | None = None) -> None:
        """Take one token for `key`, or raise `TooManyRequests` with a retry delay."""
        if not self.enabled:
            return
        now = time.monotonic() if now is None else now
        buckets = self._buckets.setdefault(limit.name, OrderedDict())
        tokens, last = buckets.pop(key, (limit.burst, now))
        tokens = min(limit.burst, tokens + (now - last) * limit.rate)
        if tokens < 1:
            buckets[key] = (tokens, now)
            retry = math.ceil((1 - tokens) / limit.rate) if limit.rate > 0 else 60
            raise TooManyRequests(
                f"Too many {limit.name} requests; try again in {retry} s.", retry_after=retry
            )
        buckets[key] = (tokens - 1, now)
        if len(buckets) > _MAX_KEYS:
            buckets.popitem(last=False)


SIGNUP_PER_ADDRESS = Limit("sign-up", rate=10 / 60, burst=5)
CHECKIN_PER_ADDRESS = Limit("check-in", rate=1.0, burst=30)
CHECKIN_PER_REGISTRATION = Limit("check-in (per registration)", rate=0.2, burst=5)
STATUS_PER_TICKET = Limit("status", rate=2.0, burst=6)
STATUS_PER_ADDRESS = Limit("status (per address)", rate=200.0, burst=400)


def limiter_of(request: AnyRequest) -> Limiter:
    """The app's limiter (one per worker process)."""
    limiter: Limiter = request.app.state.limiter
    return limiter
