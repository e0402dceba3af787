"""When a waiting shopper is asked to poll next (`next_poll_seconds`).

Polls are most of a launch's traffic, and the pre-queue waits for one moment, the
draw at the sale's start: asked to come back every second, a crowd polls in step.
So the pre-queue polls rarely and lands its first poll after the start at each
registration's own moment in a few seconds; in line, the farther back, the rarer.
And no wait outlasts a share of the admission window, so a shopper admitted just
after a poll notices in time.
"""

from __future__ import annotations

PREQUEUE_POLL = 30.0
"""Seconds between polls in the pre-queue while its sale's start is farther off; less by
up to a quarter, as the registration's spread says. A sale with no start set (started by
hand) is looked for every 1 to 2 s, so the page notices the draw within seconds."""
START_SPREAD = 5.0
"""The pre-queue's first poll after the sale starts lands this many seconds after it at
most, spread evenly over registrations: the draw is awaited by everyone at once, and a
crowd polling in the same second is the launch's peak."""
MAX_POLL = 30.0
WINDOW_SHARE = 4
"""Nobody is asked to wait longer than a quarter of the admission window between polls:
a shopper admitted just after a poll learns of it with most of the window left."""


def poll_cap(window_ms: int) -> float:
    """The longest wait between polls for a launch with this admission window."""
    return max(1.0, min(MAX_POLL, window_ms / 1000 / WINDOW_SHARE))


def next_poll(ahead: int, eta: float | None, cap: float = MAX_POLL) -> float:
    """Farther back → poll less often: every 1 s to every `cap` seconds."""
    guess = eta / 10 if eta is not None else 1 + ahead / 200
    return round(min(cap, max(1.0, guess)), 1)


def spread(registration_id: int) -> float:
    """The registration's place in [0, 1) among everyone's polls: a multiplicative hash,
    so consecutive ids scatter evenly and a spike's check-ins do not poll in step."""
    return (registration_id * 2654435761 % 2**32) / 2**32


def prequeue_poll(registration_id: int, now_ms: int, sale_ms: int | None, cap: float) -> float:
    """When to look again before the draw: just after the sale's start, at this
    registration's place in `START_SPREAD`, or every `PREQUEUE_POLL` (or `cap`), less
    up to a quarter by that place, until the start is that near. Once the start has
    passed (the draw is under way), every 1 to 1 + `START_SPREAD` seconds."""
    u = spread(registration_id)
    ceiling = min(PREQUEUE_POLL, cap) * (1 - u / 4)
    if sale_ms is None:  # started by hand, at a moment nobody can wait for: look often
        wait = 1 + u
    elif sale_ms > now_ms:
        wait = min(ceiling, (sale_ms - now_ms) / 1000 + u * START_SPREAD)
    else:
        wait = 1 + u * START_SPREAD
    return round(min(cap, max(1.0, wait)), 1)
