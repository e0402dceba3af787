"""Which failures mean a backend is out (down, refusing, frozen, busy), not a mistake in
a request or in fairdrop: the one place that knows how asyncpg, redis-py and the socket
layer say so. `outage(exc)` is the `Unavailable` (503, `Retry-After`) to answer instead,
for the web layer's error seam, the fast lane and the script runner alike.
"""

from __future__ import annotations

import errno
import socket

import asyncpg
import redis.exceptions as redis_errors

from service.errors import Unavailable

POSTGRES = "The reservations database is not answering; try again in a few seconds."
REDIS = "We cannot reach the waiting room's records right now; try again in a few seconds."
BACKEND = "A service we need did not answer; try again in a few seconds."

_POSTGRES_OUT: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # 08: lost, refused, closed mid-call
    asyncpg.CannotConnectNowError,  # starting up, shutting down, recovering
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.QueryCanceledError,  # FAIRDROP_STATEMENT_TIMEOUT, or a lock waited that long
)
_REDIS_OUT: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,  # refused, reset, LOADING, too many clients
    redis_errors.TimeoutError,
    redis_errors.ClusterDownError,  # CLUSTERDOWN, MASTERDOWN
    redis_errors.TryAgainError,
    redis_errors.ReadOnlyError,  # a replica being promoted
    redis_errors.SlotNotCoveredError,
    redis_errors.RedisClusterUnreachableError,
)
# Replies from a Redis that cannot serve now: a script running past lua-time-limit,
# a full memory with no eviction.
_REDIS_BUSY = frozenset({"BUSY", "OOM"})
_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ETIMEDOUT,
        errno.EADDRNOTAVAIL,
    }
)


def outage(exc: BaseException) -> Unavailable | None:
    """The `Unavailable` that `exc` amounts to, or None if it is not a backend outage."""
    if isinstance(exc, Unavailable):
        return exc
    if isinstance(exc, _POSTGRES_OUT):
        return Unavailable(POSTGRES)
    if isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc):
        return Unavailable(POSTGRES)  # used after asyncpg gave up on it (a timeout)
    if isinstance(exc, _REDIS_OUT):
        return Unavailable(REDIS)
    if isinstance(exc, redis_errors.ResponseError) and _status(exc) in _REDIS_BUSY:
        return Unavailable(REDIS)
    if isinstance(exc, TimeoutError):  # asyncpg's client-side limits, a pool wait
        return Unavailable(BACKEND)
    if isinstance(exc, (ConnectionError, socket.gaierror)):
        return Unavailable(BACKEND)
    if isinstance(exc, OSError) and (exc.errno in _NETWORK_ERRNOS or _connect_failed(exc)):
        return Unavailable(BACKEND)
    return None


def _status(exc: redis_errors.ResponseError) -> str:
    code = getattr(exc, "status_code", None)
    return code if isinstance(code, str) else str(exc).split(" ", 1)[0]


def _connect_failed(exc: OSError) -> bool:
    """asyncio's report of a connect that failed on every address it tried."""
    return exc.errno is None and str(exc).startswith(("Multiple exceptions", "Connect call"))
