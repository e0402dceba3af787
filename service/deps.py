"""The dependencies every service function takes: pool, Redis, scripts, clock, signer."""

from __future__ import annotations

import hashlib

from service.auth.tokens import TokenSigner
from service.clock import Clock, SystemClock
from service.infra.db import Pool
from service.infra.keys import LaunchKeys
from service.infra.redis import Redis, Scripts
from service.infra.settings import Settings


class Deps:
    """A plain class, not a dataclass: Litestar checks an injected value against its
    type, and would have msgspec walk a dataclass's fields (a union of two client
    classes is one it refuses); a plain class is checked by `isinstance` alone."""

    def __init__(
        self, settings: Settings, pool: Pool, redis: Redis, clock: Clock | None = None
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.redis = redis
        self.clock: Clock = clock or SystemClock()
        self.scripts = Scripts(redis)
        self.signer = TokenSigner(settings.secret)

    def launch_lock(self, launch_id: str) -> int:
        """The advisory-lock key of the launch's stock (`launch_lock`)."""
        return launch_lock(launch_id, self.settings.db_schema)

    def keys(self, launch_id: str) -> LaunchKeys:
        return LaunchKeys(launch_id, self.settings.redis_prefix)


def launch_lock(launch_id: str, schema: str) -> int:
    """The advisory-lock key of a launch's stock in a schema (shared by changes, exclusive
    for a rebuild or a mend): launches of one id in separate schemas never wait for each
    other."""
    name = f"fairdrop-launch:{schema}:{launch_id}".encode()
    return int.from_bytes(hashlib.sha256(name).digest()[:8], "big", signed=True)
