"""Per-worker rate limits: floods get 429 with Retry-After; polite clients never do."""

from __future__ import annotations

import pytest

from service.errors import TooManyRequests
from service.web.ratelimit import Limit, Limiter

LIMIT = Limit("status", rate=2.0, burst=3)


def test_a_burst_then_the_rate() -> None:
    limiter = Limiter()
    for _ in range(3):
        limiter.check(LIMIT, "ticket-a", now=100.0)
    with pytest.raises(TooManyRequests) as caught:
        limiter.check(LIMIT, "ticket-a", now=100.0)
    assert caught.value.status == 429 and caught.value.extra["retry_after"] == 1
    limiter.check(LIMIT, "ticket-b", now=100.0)  # keys are independent
    limiter.check(LIMIT, "ticket-a", now=100.5)  # one token back after 1/rate s
    with pytest.raises(TooManyRequests):
        limiter.check(LIMIT, "ticket-a", now=100.6)


def test_a_client_polling_at_the_rate_is_never_limited() -> None:
    limiter = Limiter()
    now = 0.0
    for _ in range(1000):
        limiter.check(LIMIT, "polite", now=now)
        now += 1 / LIMIT.rate


def test_disabled_limits_let_everything_through() -> None:
    limiter = Limiter(enabled=False)
    for _ in range(100):
        limiter.check(LIMIT, "load-test", now=0.0)
