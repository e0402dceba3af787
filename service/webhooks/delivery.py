"""Sending deliveries: claim the due ones, POST each signed (Standard Webhooks), record
what the receiver answered.

At least once, from Postgres: a claim only moves a delivery's next attempt a lease
ahead (committed before anything is sent), so several processes never send the same
delivery at once, and one that dies mid-send leaves it to be sent again when the lease
runs out. In order per order key: a delivery is due only when every earlier delivery
of its endpoint and key has got through. A failed attempt waits 1 s, 2 s, 4 s, … (up to
`FAIRDROP_WEBHOOK_BACKOFF_CAP`); after `FAIRDROP_WEBHOOK_MAX_ATTEMPTS` the delivery is
`failed` until replayed. An endpoint waits the same way after a round in which nothing
got through, and after `FAIRDROP_WEBHOOK_DISABLE_AFTER` such rounds in a row it is
disabled (its queue kept), which the dashboard shows.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import certifi
import httpx
import msgspec
from standardwebhooks import Webhook

from service import events
from service.deps import Deps
from service.infra.db import Conn
from service.webhooks import targets

log = logging.getLogger(__name__)

USER_AGENT = "fairdrop-webhooks/1"
_LEASE_SECONDS = 10.0
"""Beyond the timeout: how long a claimed delivery is left to the process sending it
(then it is sent again: its sender died, or was stopped, before recording the answer)."""
_ANSWER_BYTES = 300
"""How much of a refusing receiver's answer the log keeps."""

# Per endpoint that may be sent to now, its due deliveries whose earlier ones (same
# endpoint and order key) all got through; the oldest `$2` of them over all endpoints.
_CLAIM = """
WITH due AS (
    SELECT p.id FROM webhook_endpoints e
    CROSS JOIN LATERAL (
        SELECT d.id, d.next_attempt_at FROM webhook_deliveries d
        WHERE d.endpoint_id = e.id AND d.status = 'pending' AND d.next_attempt_at <= $1
          AND NOT EXISTS (
              SELECT 1 FROM webhook_deliveries b
              WHERE b.endpoint_id = d.endpoint_id AND b.order_key = d.order_key
                AND b.status <> 'delivered' AND (b.event_id, b.id) < (d.event_id, d.id))
        ORDER BY d.next_attempt_at, d.id
        LIMIT $2
        FOR UPDATE OF d SKIP LOCKED
    ) p
    WHERE e.enabled AND e.retry_at <= $1
    ORDER BY p.next_attempt_at, p.id
    LIMIT $2
)
UPDATE webhook_deliveries d SET next_attempt_at = $3
FROM due, webhook_endpoints e
WHERE d.id = due.id AND e.id = d.endpoint_id
RETURNING d.id, d.endpoint_id, d.message_id, d.payload, d.attempts, e.url, e.secret,
          CASE WHEN e.previous_until > $1 THEN e.previous_secret END AS previous_secret
"""
_DELIVERED = """
UPDATE webhook_deliveries d SET status = 'delivered', attempts = d.attempts + 1,
    last_attempt_at = $1, delivered_at = $1, last_status = t.status,
    last_response_ms = t.ms, last_error = NULL
FROM unnest($2::bigint[], $3::int[], $4::int[]) AS t(id, status, ms)
WHERE d.id = t.id
"""
_FAILED = """
UPDATE webhook_deliveries d SET attempts = d.attempts + 1, last_attempt_at = $1,
    last_status = t.status, last_response_ms = t.ms, last_error = t.error,
    status = CASE WHEN d.attempts + 1 >= $6 THEN 'failed' ELSE 'pending' END,
    next_attempt_at = t.next
FROM unnest($2::bigint[], $3::int[], $4::int[], $5::text[], $7::timestamptz[])
    AS t(id, status, ms, error, next)
WHERE d.id = t.id
"""
_HEALTHY = "UPDATE webhook_endpoints SET failures = 0, retry_at = '-infinity' WHERE id = ANY($1)"
# One failed round counts once, however many processes saw it fail: the first to record
# it moves retry_at past now. The threshold disables the endpoint in the same statement.
_FAILED_ROUND = """
WITH old AS (
    SELECT id, enabled FROM webhook_endpoints WHERE id = $1 AND retry_at <= $2 FOR UPDATE
)
UPDATE webhook_endpoints e SET failures = e.failures + 1,
    retry_at = $2 + least($3, power(2, least(e.failures, 30))) * interval '1 second',
    enabled = e.enabled AND e.failures + 1 < $4,
    disabled_at = CASE WHEN e.enabled AND e.failures + 1 >= $4 THEN $2 ELSE e.disabled_at END,
    disabled_reason = CASE WHEN e.enabled AND e.failures + 1 >= $4 THEN $5
                           ELSE e.disabled_reason END
FROM old WHERE e.id = old.id
RETURNING e.launch_id, e.url, e.failures, e.disabled_reason, old.enabled AND NOT e.enabled AS off
"""


class Claimed(msgspec.Struct, frozen=True):
    id: int
    endpoint_id: str
    message_id: str
    payload: str
    attempts: int
    url: str
    secret: str
    previous_secret: str | None


class Outcome(msgspec.Struct, frozen=True):
    claimed: Claimed
    status: int | None
    """The HTTP status answered (None: no answer)."""
    ms: int
    error: str | None
    """None: delivered (a 2xx)."""


def backoff(deps: Deps, attempts: int) -> timedelta:
    """The wait after the `attempts`-th failure: 1 s, 2 s, 4 s, … at most the cap."""
    cap = deps.settings.webhook_backoff_cap_seconds
    return timedelta(seconds=min(cap, 2.0 ** min(attempts - 1, 30)))


def sign(secrets: list[str], message_id: str, at: datetime, body: str) -> str:
    """The `webhook-signature` header: a `v1,…` signature per secret, space-separated."""
    return " ".join(Webhook(s).sign(message_id, at, body) for s in secrets)


@functools.cache
def _tls() -> ssl.SSLContext:
    """Built once: loading the CA bundle costs more than a local delivery."""
    return ssl.create_default_context(cafile=certifi.where())


async def _target(deps: Deps, url: str) -> httpx.URL | str:
    """The URL to send to, or why not (checked once a round for all its deliveries)."""
    try:
        parsed = targets.check_url(url)
        await targets.check_address(parsed, allow_private=deps.settings.webhook_allow_private)
    except targets.Refused as exc:
        return f"refused: {exc}"
    return parsed


async def _attempt(client: httpx.AsyncClient, c: Claimed, url: httpx.URL | str) -> Outcome:
    """POST one delivery to `url` (or, given why it may not be sent, fail it so)."""
    if isinstance(url, str):
        return Outcome(claimed=c, status=None, ms=0, error=url)
    started = time.perf_counter()
    status: int | None = None
    error: str | None = None
    try:
        # The wall clock, not the injectable one: the receiver checks it against its own.
        at = datetime.now(UTC)
        body = c.payload
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": c.message_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": sign(
                [c.secret, *([c.previous_secret] if c.previous_secret else [])],
                c.message_id,
                at,
                body,
            ),
        }
        async with client.stream("POST", url, content=body.encode(), headers=headers) as resp:
            status = resp.status_code
            if not 200 <= status < 300:
                answer = b""
                async for chunk in resp.aiter_raw():
                    answer += chunk
                    if len(answer) >= _ANSWER_BYTES:
                        break
                text = answer[:_ANSWER_BYTES].decode("utf-8", "replace").strip()
                error = f"HTTP {status}" + (f": {text}" if text else "")
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    ms = round((time.perf_counter() - started) * 1000)
    return Outcome(claimed=c, status=status, ms=ms, error=error)


def _now(deps: Deps) -> datetime:
    return datetime.fromtimestamp(deps.clock.now_ms() / 1000, tz=UTC)


async def _claim(deps: Deps, batch: int) -> list[Claimed]:
    now = _now(deps)
    lease = now + timedelta(seconds=deps.settings.webhook_timeout_seconds + _LEASE_SECONDS)
    rows = await deps.pool.fetch(_CLAIM, now, batch, lease)
    return [Claimed(**dict(r)) for r in sorted(rows, key=lambda r: r["id"])]


async def _record(deps: Deps, outcomes: list[Outcome]) -> None:
    now = _now(deps)
    ok = [o for o in outcomes if o.error is None]
    failed = [o for o in outcomes if o.error is not None]
    healthy = sorted({o.claimed.endpoint_id for o in ok})
    failing = sorted({o.claimed.endpoint_id for o in failed} - set(healthy))
    async with deps.pool.acquire() as con, con.transaction():
        if ok:
            await con.execute(
                _DELIVERED,
                now,
                [o.claimed.id for o in ok],
                [o.status for o in ok],
                [o.ms for o in ok],
            )
            await con.execute(_HEALTHY, healthy)
        if failed:
            await con.execute(
                _FAILED,
                now,
                [o.claimed.id for o in failed],
                [o.status for o in failed],
                [o.ms for o in failed],
                [o.error for o in failed],
                deps.settings.webhook_max_attempts,
                [now + backoff(deps, o.claimed.attempts + 1) for o in failed],
            )
        last_error = {o.claimed.endpoint_id: o.error for o in failed}
        for endpoint_id in failing:
            await _failed_round(deps, con, endpoint_id, now, str(last_error[endpoint_id]))


async def _failed_round(deps: Deps, con: Conn, endpoint_id: str, now: datetime, error: str) -> None:
    threshold = deps.settings.webhook_disable_after
    reason = f"no delivery got through in {threshold} tries in a row (the last: {error})"
    row: asyncpg.Record | None = await con.fetchrow(
        _FAILED_ROUND,
        endpoint_id,
        now,
        deps.settings.webhook_backoff_cap_seconds,
        threshold,
        reason[:1000],
    )
    if row is not None and row["off"]:
        log.warning("webhook endpoint %s (%s) disabled: %s", endpoint_id, row["url"], error)
        await events.record(
            con,
            launch_id=row["launch_id"],
            actor="system",
            channel="system",
            kind="webhook.disabled",
            subject=f"webhook:{endpoint_id}",
            data={"endpoint": endpoint_id, "url": row["url"], "reason": row["disabled_reason"]},
        )


async def deliver_due(deps: Deps, *, batch: int = 50, budget_seconds: float = 5.0) -> int:
    """Send due deliveries, `batch` at a time side by side, until none is due or
    `budget_seconds` have passed (so a slow receiver cannot stall the sweeper's other
    work for long). Returns how many got through."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget_seconds
    claimed = await _claim(deps, batch)
    if not claimed:
        return 0
    delivered = 0
    timeout = httpx.Timeout(deps.settings.webhook_timeout_seconds)
    # No proxies from the environment: the address checked is the address reached.
    # As many kept-alive connections as requests in flight: none is opened twice.
    limits = httpx.Limits(max_connections=batch, max_keepalive_connections=batch)
    async with httpx.AsyncClient(
        timeout=timeout, limits=limits, follow_redirects=False, trust_env=False, verify=_tls()
    ) as client:
        while claimed:
            urls = {u: await _target(deps, u) for u in sorted({c.url for c in claimed})}
            outcomes = await asyncio.gather(*(_attempt(client, c, urls[c.url]) for c in claimed))
            await _record(deps, list(outcomes))
            delivered += sum(o.error is None for o in outcomes)
            if loop.time() >= deadline:
                break
            claimed = await _claim(deps, batch)
    return delivered
