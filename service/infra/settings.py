"""One typed settings object, read from the environment once."""

from __future__ import annotations

import functools
import os
import secrets

import msgspec


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything fairdrop reads from the environment.

    Each field names its variable; unset variables take the default shown.
    """

    database_url: str | None = None
    """`DATABASE_URL`: PostgreSQL URL. Unset → an embedded PostgreSQL is started."""
    redis_url: str | None = None
    """`REDIS_URL`: Redis/Valkey URL. Unset → an embedded Valkey is started."""
    redis_cluster: bool = False
    """`FAIRDROP_REDIS_CLUSTER`: `REDIS_URL` names a node of a Redis Cluster; each launch's
    keys share one hash slot, so launches spread over the shards."""
    secret: str = ""
    """`FAIRDROP_SECRET`: key that signs shopper tokens. Unset → random per process (dev only)."""
    db_schema: str = "public"
    """`FAIRDROP_DB_SCHEMA`: Postgres schema holding fairdrop's tables."""
    redis_prefix: str = ""
    """`FAIRDROP_REDIS_PREFIX`: prefix on every Redis key (isolates tests or tenants)."""
    data_dir: str | None = None
    """`FAIRDROP_DATA_DIR`: where the embedded servers keep data (default: per-user data dir)."""
    host: str = "127.0.0.1"
    """`FAIRDROP_HOST`: address `fairdrop serve` binds."""
    port: int = 8000
    """`FAIRDROP_PORT`: port `fairdrop serve` binds."""
    workers: int = 1
    """`FAIRDROP_WORKERS`: granian worker processes."""
    confirm_deadline_seconds: float = 30.0
    """`FAIRDROP_CONFIRM_DEADLINE`: how long a hold may stay *confirming* before the
    reconciler settles it from Postgres."""
    sweep_interval_seconds: float = 1.0
    """`FAIRDROP_SWEEP_INTERVAL`: how often background tidy-up (expiry, outbox,
    reconciler, scheduled transitions) runs in each process."""
    shopper_token_ttl_seconds: int = 7 * 24 * 3600
    """`FAIRDROP_TOKEN_TTL`: lifetime of a shopper token."""
    max_body_bytes: int = 1_048_576
    """`FAIRDROP_MAX_BODY`: largest request body accepted (bytes)."""
    background: bool = True
    """`FAIRDROP_BACKGROUND`: run the sweeper/outbox/reconciler loop in this process."""
    statement_timeout_seconds: float = 5.0
    """`FAIRDROP_STATEMENT_TIMEOUT`: Postgres cancels any statement of this process that
    runs (or waits for a lock) longer, so that no request holds a lock or a connection
    for long, even after its caller is gone (0: no limit)."""
    long_statement_timeout_seconds: float = 600.0
    """`FAIRDROP_LONG_STATEMENT_TIMEOUT`: the limit instead for work known to be long:
    a rebuild, a draw, a registration import (0: no limit)."""
    smtp_host: str = "127.0.0.1"
    """`FAIRDROP_SMTP_HOST`: SMTP server that notifications are handed to."""
    smtp_port: int = 1025
    """`FAIRDROP_SMTP_PORT`: its port."""
    smtp_user: str | None = None
    """`FAIRDROP_SMTP_USER`: SMTP login; unset → no authentication."""
    smtp_password: str | None = None
    """`FAIRDROP_SMTP_PASSWORD`: SMTP password (with `FAIRDROP_SMTP_USER`)."""
    smtp_tls: bool = False
    """`FAIRDROP_SMTP_TLS`: speak TLS to the SMTP server — implicit TLS on port 465,
    STARTTLS (required) on any other port. Off → plain SMTP (a local relay)."""
    mail_from: str = "fairdrop <no-reply@fairdrop.invalid>"
    """`FAIRDROP_MAIL_FROM`: the From of every notification (also the envelope sender)."""
    public_url: str = "http://127.0.0.1:8000"
    """`FAIRDROP_PUBLIC_URL`: where shoppers reach this service; links in e-mails start here."""
    phone_region: str = "DE"
    """`FAIRDROP_PHONE_REGION`: the country (ISO 3166 code) of phone numbers given without
    their country code; every number is kept in E.164 (`+4930…`)."""
    notify: bool = True
    """`FAIRDROP_NOTIFY`: send notification e-mail from this process's background loop."""
    webhook_timeout_seconds: float = 5.0
    """`FAIRDROP_WEBHOOK_TIMEOUT`: how long a webhook receiver has to answer."""
    webhook_backoff_cap_seconds: float = 3600.0
    """`FAIRDROP_WEBHOOK_BACKOFF_CAP`: the longest wait between two tries of a webhook
    (the waits double from 1 s up to this)."""
    webhook_max_attempts: int = 24
    """`FAIRDROP_WEBHOOK_MAX_ATTEMPTS`: tries of one delivery before it is marked failed
    (a failed delivery can be replayed)."""
    webhook_disable_after: int = 20
    """`FAIRDROP_WEBHOOK_DISABLE_AFTER`: an endpoint is disabled after this many rounds
    in a row in which no delivery to it got through (about 9 hours at the defaults)."""
    webhook_allow_private: bool = False
    """`FAIRDROP_WEBHOOK_ALLOW_PRIVATE`: let webhooks go to loopback and private
    addresses (tests, a receiver on the same network); off, such URLs are refused."""

    rate_limits: bool = True
    """`FAIRDROP_RATE_LIMITS`: per-address and per-ticket limits on sign-up, check-in and
    status (off for load tests)."""
    secret_is_random: bool = False
    """True when `FAIRDROP_SECRET` was unset and a random one was drawn."""

    @property
    def embedded(self) -> bool:
        return self.database_url is None or self.redis_url is None


_ENV = {
    "database_url": ("DATABASE_URL", str),
    "redis_url": ("REDIS_URL", str),
    "redis_cluster": ("FAIRDROP_REDIS_CLUSTER", "bool"),
    "secret": ("FAIRDROP_SECRET", str),
    "db_schema": ("FAIRDROP_DB_SCHEMA", str),
    "redis_prefix": ("FAIRDROP_REDIS_PREFIX", str),
    "data_dir": ("FAIRDROP_DATA_DIR", str),
    "host": ("FAIRDROP_HOST", str),
    "port": ("FAIRDROP_PORT", int),
    "workers": ("FAIRDROP_WORKERS", int),
    "confirm_deadline_seconds": ("FAIRDROP_CONFIRM_DEADLINE", float),
    "sweep_interval_seconds": ("FAIRDROP_SWEEP_INTERVAL", float),
    "shopper_token_ttl_seconds": ("FAIRDROP_TOKEN_TTL", int),
    "max_body_bytes": ("FAIRDROP_MAX_BODY", int),
    "background": ("FAIRDROP_BACKGROUND", "bool"),
    "statement_timeout_seconds": ("FAIRDROP_STATEMENT_TIMEOUT", float),
    "long_statement_timeout_seconds": ("FAIRDROP_LONG_STATEMENT_TIMEOUT", float),
    "rate_limits": ("FAIRDROP_RATE_LIMITS", "bool"),
    "smtp_host": ("FAIRDROP_SMTP_HOST", str),
    "smtp_port": ("FAIRDROP_SMTP_PORT", int),
    "smtp_user": ("FAIRDROP_SMTP_USER", str),
    "smtp_password": ("FAIRDROP_SMTP_PASSWORD", str),
    "smtp_tls": ("FAIRDROP_SMTP_TLS", "bool"),
    "mail_from": ("FAIRDROP_MAIL_FROM", str),
    "public_url": ("FAIRDROP_PUBLIC_URL", str),
    "phone_region": ("FAIRDROP_PHONE_REGION", str),
    "notify": ("FAIRDROP_NOTIFY", "bool"),
    "webhook_timeout_seconds": ("FAIRDROP_WEBHOOK_TIMEOUT", float),
    "webhook_backoff_cap_seconds": ("FAIRDROP_WEBHOOK_BACKOFF_CAP", float),
    "webhook_max_attempts": ("FAIRDROP_WEBHOOK_MAX_ATTEMPTS", int),
    "webhook_disable_after": ("FAIRDROP_WEBHOOK_DISABLE_AFTER", int),
    "webhook_allow_private": ("FAIRDROP_WEBHOOK_ALLOW_PRIVATE", "bool"),
}

ENV_VARS: dict[str, str] = {field: var for field, (var, _) in _ENV.items()}


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"not a boolean: {raw!r}")


def from_env(env: dict[str, str] | None = None) -> Settings:
    """Build settings from `env` (default: the process environment)."""
    source = os.environ if env is None else env
    values: dict[str, object] = {}
    for field, (var, kind) in _ENV.items():
        raw = source.get(var)
        if raw is None or raw == "":
            continue
        try:
            if kind == "bool":
                values[field] = _parse_bool(raw)
            else:
                values[field] = kind(raw)  # type: ignore[operator]
        except ValueError as exc:
            raise SystemExit(f"fairdrop: bad value for {var}: {exc}") from exc
    if "secret" not in values:
        values["secret"] = secrets.token_urlsafe(32)
        values["secret_is_random"] = True
    return Settings(**values)  # type: ignore[arg-type]


@functools.cache
def get_settings() -> Settings:
    """The process's settings, built once."""
    return from_env()
