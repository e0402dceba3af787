"""Rate limits: floods get 429 `too-many-requests` with `Retry-After`.

Each `Limit` is a bucket of `burst` requests refilled at `rate` a second, per subject
(an address, a registration, a key). Two ways to count:

- `take`: in Redis (`lua/rate_limit.lua`, one call for all of a request's limits), so a
  figure holds across every worker and replica of a deployment. Sign-up, check-in,
  resend and code lookups, none of which is hot enough for a round trip to matter.
- `Limiter`: in each worker's memory, for the status poll, which must cost no Redis
  round trip. Each of the `FAIRDROP_WORKERS` workers of a `fairdrop serve` allows its
  share of the figure (`Limit.share`), so one serve's workers together allow it.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass, replace

from service.deps import Deps
from service.errors import TooManyRequests
from service.store import queue as qstore
from service.web.params import AnyRequest

_MAX_KEYS = 100_000  # per limit; least recently seen keys are forgotten first


@dataclass(frozen=True)
class Limit:
    name: str
    rate: float
    """Requests per second, refilled continuously."""
    burst: float
    """Requests at once from a full bucket."""
    least: float = 0.0
    """The least rate a worker's share keeps: the pace of an honest client, which a
    client whose requests all reach one worker must still get."""

    def share(self, workers: int) -> Limit:
        """This limit's share on one of `workers` workers that count alone."""
        if workers <= 1:
            return self
        rate = max(self.rate / workers, self.least)
        return replace(self, rate=rate, burst=max(self.burst / workers, 1.0))


def _refused(limit: Limit, retry: int) -> TooManyRequests:
    return TooManyRequests(
        f"Too many {limit.name} requests; try again in {retry} s.", retry_after=retry
    )


async def take(deps: Deps, launch_id: str, *uses: tuple[Limit, str]) -> None:
    """Take one request of each (limit, subject) of this launch, counted in Redis, or
    none of them and raise `TooManyRequests` for the one with the longest wait."""
    if not deps.settings.rate_limits:
        return
    wait_ms, refused = await qstore.rate_limit(
        deps.scripts,
        deps.keys(launch_id),
        now_ms=deps.clock.now_ms(),
        allowances=[(f"{lim.name}|{subject}", 1000 / lim.rate, lim.burst) for lim, subject in uses],
    )
    if refused:
        raise _refused(uses[refused - 1][0], max(1, math.ceil(wait_ms / 1000)))


class Limiter:
    """The status poll's limits, in this worker's memory (see the module)."""

    def __init__(self, enabled: bool = True, workers: int = 1) -> None:
        self.enabled = enabled
        self.workers = workers
        self._buckets: dict[str, OrderedDict[str, tuple[float, float]]] = {}
        self._shares: dict[Limit, Limit] = {}

    def check(self, limit: Limit, key: str, now: float | None = None) -> None:
        """Take one token for `key`, or raise `TooManyRequests` with a retry delay."""
        if not self.enabled:
            return
        share = self._shares.get(limit)
        if share is None:
            share = self._shares[limit] = limit.share(self.workers)
        now = time.monotonic() if now is None else now
        buckets = self._buckets.setdefault(limit.name, OrderedDict())
        tokens, last = buckets.pop(key, (share.burst, now))
        tokens = min(share.burst, tokens + (now - last) * share.rate)
        if tokens < 1:
            buckets[key] = (tokens, now)
            retry = math.ceil((1 - tokens) / share.rate) if share.rate > 0 else 60
            raise _refused(limit, retry)
        buckets[key] = (tokens - 1, now)
        if len(buckets) > _MAX_KEYS:
            buckets.popitem(last=False)


# Counted in Redis (`take`), across the deployment.
SIGNUP_PER_ADDRESS = Limit("sign-up", rate=10 / 60, burst=5)
CHECKIN_PER_ADDRESS = Limit("check-in", rate=1.0, burst=30)
CHECKIN_PER_REGISTRATION = Limit("check-in (per registration)", rate=0.2, burst=5)
RESEND_PER_REGISTRATION = Limit("resend", rate=1 / 600, burst=5)
LOOKUPS_PER_KEY = Limit("code lookup", rate=2.0, burst=30)
SEARCHES_PER_KEY = Limit("customer search", rate=2.0, burst=30)
"""An agent's searches (by code among others): guessing codes there is limited as at
the desk. Counted under `SEARCH_SPACE`, as a search spans launches."""
SEARCH_SPACE = "_agent-search"
"""Pickup desk lookups and collections by code, per staff key and launch: a desk
works at the pace of the people in front of it; guessing codes does not."""

# Counted in each worker (`Limiter`), its share of these. A waiter is told to poll
# at most once a second (`service.queue.status.next_poll`).
STATUS_PER_TICKET = Limit("status", rate=2.0, burst=6, least=1.0)
STATUS_PER_ADDRESS = Limit("status (per address)", rate=200.0, burst=400)


def limiter_of(request: AnyRequest) -> Limiter:
    """The app's limiter (one per worker process)."""
    limiter: Limiter = request.app.state.limiter
    return limiter
