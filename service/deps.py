"""The dependencies every service function takes: pool, Redis, scripts, clock, signer."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from service.auth.tokens import TokenSigner
from service.clock import Clock, SystemClock
from service.infra.db import Pool
from service.infra.keys import LaunchKeys
from service.infra.redis import Redis, Scripts
from service.infra.settings import Settings


@dataclass
class Deps:
    settings: Settings
    pool: Pool
    redis: Redis
    clock: Clock = field(default_factory=SystemClock)
    scripts: Scripts = field(init=False)
    signer: TokenSigner = field(init=False)

    def __post_init__(self) -> None:
        self.scripts = Scripts(self.redis)
        self.signer = TokenSigner(self.settings.secret)

    def keys(self, launch_id: str) -> LaunchKeys:
        return LaunchKeys(launch_id, self.settings.redis_prefix)


def launch_lock(launch_id: str) -> int:
    """The advisory-lock key of a launch's stock (shared by changes, exclusive for rebuild)."""
    return int.from_bytes(
        hashlib.sha256(b"fairdrop-launch:" + launch_id.encode()).digest()[:8], "big", signed=True
    )
