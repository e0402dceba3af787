"""One typed settings object, read from the environment once."""

from __future__ import annotations

import functools
import ipaddress
import os
import secrets
from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlsplit

import msgspec


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything fairdrop reads from the environment.

    Each field names its variable; unset variables take the default shown.
    """

    database_url: str | None = msgspec.field(default=None, name="DATABASE_URL")
    """`DATABASE_URL`: PostgreSQL URL. Unset → an embedded PostgreSQL is started."""
    redis_url: str | None = msgspec.field(default=None, name="REDIS_URL")
    """`REDIS_URL`: Redis/Valkey URL. Unset → an embedded Valkey is started."""
    redis_cluster: bool = msgspec.field(default=False, name="FAIRDROP_REDIS_CLUSTER")
    """`FAIRDROP_REDIS_CLUSTER`: `REDIS_URL` names a node of a Redis Cluster; each launch's
    keys share one hash slot, so launches spread over the shards."""
    secret: str = msgspec.field(default="", name="FAIRDROP_SECRET")
    """`FAIRDROP_SECRET`: key that signs shopper tokens. Unset → random per process (dev only)."""
    db_schema: str = msgspec.field(default="public", name="FAIRDROP_DB_SCHEMA")
    """`FAIRDROP_DB_SCHEMA`: Postgres schema holding fairdrop's tables."""
    redis_prefix: str = msgspec.field(default="", name="FAIRDROP_REDIS_PREFIX")
    """`FAIRDROP_REDIS_PREFIX`: prefix on every Redis key (isolates tests or tenants)."""
    data_dir: str | None = msgspec.field(default=None, name="FAIRDROP_DATA_DIR")
    """`FAIRDROP_DATA_DIR`: where the embedded servers keep data (default: per-user data dir)."""
    host: str = msgspec.field(default="127.0.0.1", name="FAIRDROP_HOST")
    """`FAIRDROP_HOST`: address `fairdrop serve` binds."""
    port: int = msgspec.field(default=8000, name="FAIRDROP_PORT")
    """`FAIRDROP_PORT`: port `fairdrop serve` binds."""
    workers: int = msgspec.field(default=1, name="FAIRDROP_WORKERS")
    """`FAIRDROP_WORKERS`: granian worker processes."""
    confirm_deadline_seconds: float = msgspec.field(default=30.0, name="FAIRDROP_CONFIRM_DEADLINE")
    """`FAIRDROP_CONFIRM_DEADLINE`: how long a hold may stay *confirming* before the
    reconciler settles it from Postgres."""
    sweep_interval_seconds: float = msgspec.field(default=1.0, name="FAIRDROP_SWEEP_INTERVAL")
    """`FAIRDROP_SWEEP_INTERVAL`: how often background tidy-up (expiry, outbox,
    reconciler, scheduled transitions) runs in each process."""
    shopper_token_ttl_seconds: int = msgspec.field(default=7 * 24 * 3600, name="FAIRDROP_TOKEN_TTL")
    """`FAIRDROP_TOKEN_TTL`: lifetime of a shopper token."""
    max_body_bytes: int = msgspec.field(default=1_048_576, name="FAIRDROP_MAX_BODY")
    """`FAIRDROP_MAX_BODY`: largest request body accepted (bytes)."""
    background: bool = msgspec.field(default=True, name="FAIRDROP_BACKGROUND")
    """`FAIRDROP_BACKGROUND`: run the sweeper/outbox/reconciler loop in this process."""
    statement_timeout_seconds: float = msgspec.field(default=5.0, name="FAIRDROP_STATEMENT_TIMEOUT")
    """`FAIRDROP_STATEMENT_TIMEOUT`: Postgres cancels any statement of this process that
    runs (or waits for a lock) longer, so that no request holds a lock or a connection
    for long, even after its caller is gone (0: no limit)."""
    long_statement_timeout_seconds: float = msgspec.field(
        default=600.0, name="FAIRDROP_LONG_STATEMENT_TIMEOUT"
    )
    """`FAIRDROP_LONG_STATEMENT_TIMEOUT`: the limit instead for work known to be long:
    a rebuild, a draw, a registration import (0: no limit)."""
    redis_timeout_seconds: float = msgspec.field(default=5.0, name="FAIRDROP_REDIS_TIMEOUT")
    """`FAIRDROP_REDIS_TIMEOUT`: how long a Redis command or connect may go unanswered
    before it fails and the request answers 503 `unavailable` (a frozen Redis)."""
    smtp_host: str = msgspec.field(default="127.0.0.1", name="FAIRDROP_SMTP_HOST")
    """`FAIRDROP_SMTP_HOST`: SMTP server that notifications are handed to."""
    smtp_port: int = msgspec.field(default=1025, name="FAIRDROP_SMTP_PORT")
    """`FAIRDROP_SMTP_PORT`: its port."""
    smtp_user: str | None = msgspec.field(default=None, name="FAIRDROP_SMTP_USER")
    """`FAIRDROP_SMTP_USER`: SMTP login; unset → no authentication."""
    smtp_password: str | None = msgspec.field(default=None, name="FAIRDROP_SMTP_PASSWORD")
    """`FAIRDROP_SMTP_PASSWORD`: SMTP password (with `FAIRDROP_SMTP_USER`)."""
    smtp_tls: bool = msgspec.field(default=False, name="FAIRDROP_SMTP_TLS")
    """`FAIRDROP_SMTP_TLS`: speak TLS to the SMTP server — implicit TLS on port 465,
    STARTTLS (required) on any other port. Off → plain SMTP (a local relay)."""
    mail_from: str = msgspec.field(
        default="fairdrop <no-reply@fairdrop.invalid>", name="FAIRDROP_MAIL_FROM"
    )
    """`FAIRDROP_MAIL_FROM`: the From of every notification (also the envelope sender)."""
    public_url: str | None = msgspec.field(default=None, name="FAIRDROP_PUBLIC_URL")
    """`FAIRDROP_PUBLIC_URL`: where shoppers reach this service (`https://shop.example`).
    Every link fairdrop sends or prints starts here (`link`), never with a request's
    `Host` header, which its sender chooses. Unset → the address `serve` binds."""
    phone_region: str = msgspec.field(default="DE", name="FAIRDROP_PHONE_REGION")
    """`FAIRDROP_PHONE_REGION`: the country (ISO 3166 code) of phone numbers given without
    their country code; every number is kept in E.164 (`+4930…`)."""
    notify: bool = msgspec.field(default=True, name="FAIRDROP_NOTIFY")
    """`FAIRDROP_NOTIFY`: send notification e-mail from this process's background loop."""
    webhook_timeout_seconds: float = msgspec.field(default=5.0, name="FAIRDROP_WEBHOOK_TIMEOUT")
    """`FAIRDROP_WEBHOOK_TIMEOUT`: how long a webhook receiver has to answer."""
    webhook_backoff_cap_seconds: float = msgspec.field(
        default=3600.0, name="FAIRDROP_WEBHOOK_BACKOFF_CAP"
    )
    """`FAIRDROP_WEBHOOK_BACKOFF_CAP`: the longest wait between two tries of a webhook
    (the waits double from 1 s up to this)."""
    webhook_max_attempts: int = msgspec.field(default=24, name="FAIRDROP_WEBHOOK_MAX_ATTEMPTS")
    """`FAIRDROP_WEBHOOK_MAX_ATTEMPTS`: tries of one delivery before it is marked failed
    (a failed delivery can be replayed)."""
    webhook_disable_after: int = msgspec.field(default=20, name="FAIRDROP_WEBHOOK_DISABLE_AFTER")
    """`FAIRDROP_WEBHOOK_DISABLE_AFTER`: an endpoint is disabled after this many rounds
    in a row in which no delivery to it got through (about 9 hours at the defaults)."""
    webhook_allow_private: bool = msgspec.field(
        default=False, name="FAIRDROP_WEBHOOK_ALLOW_PRIVATE"
    )
    """`FAIRDROP_WEBHOOK_ALLOW_PRIVATE`: let webhooks go to loopback and private
    addresses (tests, a receiver on the same network); off, such URLs are refused."""

    trusted_proxies: str = msgspec.field(default="", name="FAIRDROP_TRUSTED_PROXIES")
    """`FAIRDROP_TRUSTED_PROXIES`: the proxies in front (comma-separated addresses or
    CIDRs) whose `X-Forwarded-For` / `Forwarded` is believed for the client's address,
    which rate limits go by (`service/web/forwarded.py`). Empty: trust nobody, and take
    the TCP peer's address."""
    metrics_dir: str | None = msgspec.field(default=None, name="PROMETHEUS_MULTIPROC_DIR")
    """`PROMETHEUS_MULTIPROC_DIR`: the folder where `fairdrop serve`'s workers keep their
    metrics for one another (emptied at start); unset, a temporary one
    (`service/infra/metrics.py`)."""
    log_format: Literal["text", "json"] = msgspec.field(default="text", name="FAIRDROP_LOG_FORMAT")
    """`FAIRDROP_LOG_FORMAT`: `text` (log lines for people), or `json`: one JSON object a
    line, a line for each request and each background job run besides
    (`service/infra/logs.py`)."""
    rate_limits: bool = msgspec.field(default=True, name="FAIRDROP_RATE_LIMITS")
    """`FAIRDROP_RATE_LIMITS`: per-address and per-ticket limits on sign-up, check-in and
    status (off for load tests)."""
    secret_is_random: bool = False
    """True when `FAIRDROP_SECRET` was unset and a random one was drawn."""

    @property
    def embedded(self) -> bool:
        return self.database_url is None or self.redis_url is None

    @property
    def base_url(self) -> str:
        """`FAIRDROP_PUBLIC_URL` without a trailing slash, else the bound address."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return bound_url(self.host, self.port)

    def link(self, path: str) -> str:
        """The absolute link to `path` (starting with `/`): the one way links are made."""
        return self.base_url + path

    @property
    def trusted_networks(self) -> tuple[Network, ...]:
        """`FAIRDROP_TRUSTED_PROXIES` as networks (an address is a network of one)."""
        return networks(self.trusted_proxies)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=16)
def networks(raw: str) -> tuple[Network, ...]:
    """A comma-separated list of addresses or CIDRs; `ValueError` names a bad one."""
    out = []
    for part in raw.split(","):
        if part := part.strip():
            try:
                out.append(ipaddress.ip_network(part, strict=False))
            except ValueError as exc:
                raise ValueError(f"{part!r} is not an address or CIDR") from exc
    return tuple(out)


def bound_url(host: str, port: int) -> str:
    """Where a browser on this machine reaches a server bound to `host`:`port` (a
    wildcard address is reached on loopback)."""
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - naming the wildcard, not binding it
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _public_url_refusal(raw: str | None) -> str | None:
    if raw is None:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{raw!r} is not an http(s) URL with a host"
    if parts.query or parts.fragment:
        return f"{raw!r} has a query or fragment; links are built on it"
    return None


ENV_VARS: dict[str, str] = {
    f.name: f.encode_name for f in msgspec.structs.fields(Settings) if f.encode_name.isupper()
}
"""Each field read from the environment, and the variable it is read from."""


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from `env` (default: the process environment); an empty variable
    counts as unset. Numbers and booleans (`1`/`0`, `true`/`false`) are read from their
    text by msgspec; a bad value stops the process with one line naming the variable."""
    source = os.environ if env is None else env
    given = {var: source[var] for var in ENV_VARS.values() if source.get(var)}
    try:
        settings = msgspec.convert(given, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SystemExit(f"fairdrop: bad value in the environment: {exc}") from exc
    if refusal := _public_url_refusal(settings.public_url):
        raise SystemExit(f"fairdrop: bad value for FAIRDROP_PUBLIC_URL: {refusal}")
    try:
        networks(settings.trusted_proxies)
    except ValueError as exc:
        raise SystemExit(f"fairdrop: bad value for FAIRDROP_TRUSTED_PROXIES: {exc}") from exc
    if settings.secret:
        return settings
    return msgspec.structs.replace(
        settings, secret=secrets.token_urlsafe(32), secret_is_random=True
    )


@functools.cache
def get_settings() -> Settings:
    """The process's settings, built once."""
    return from_env()
