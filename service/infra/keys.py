"""Redis key names, built in one place. Every key of a launch carries its hash tag."""

from __future__ import annotations

import functools

import msgspec

# Every key of a launch (what each holds: lua/_shared.lua). A script is sent the ones
# its header names, in that order (service/infra/redis.py).
LAUNCH_KEY_NAMES: tuple[str, ...] = (
    "meta",
    "free",
    "fresh",
    "holds",
    "expiry",
    "confirming",
    "cust",
    "held",
    "confirmed",
    "allocated",
    "applied",
    "evlog",
    "qpos",
    "prequeue",
    "drawset",
    "qmeta",
    "window",
    "shopping",
    "qrank",
    "placelog",
    "limits",
    "left",
    "leftpre",
)


class LaunchKeys(msgspec.Struct, frozen=True):
    """The keys of one launch, e.g. `fd:{iphone-17}:free`."""

    launch_id: str
    prefix: str = ""

    def key(self, name: str) -> str:
        return launch_key(self.launch_id, self.prefix, name)

    @property
    def all(self) -> list[str]:
        """Every key of the launch, in `LAUNCH_KEY_NAMES` order."""
        return list(named_keys(self.launch_id, self.prefix, LAUNCH_KEY_NAMES))

    def named(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """The keys called `names`, in that order: what a script takes as KEYS."""
        return named_keys(self.launch_id, self.prefix, names)

    def __getattr__(self, name: str) -> str:
        if name in LAUNCH_KEY_NAMES:
            return self.key(name)
        raise AttributeError(name)


def launch_key(launch_id: str, prefix: str, name: str) -> str:
    """The one place a key's name is spelled: prefix, then the launch's hash tag."""
    return f"{prefix}fd:{{{launch_id}}}:{name}"


@functools.lru_cache(maxsize=4096)
def named_keys(launch_id: str, prefix: str, names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(launch_key(launch_id, prefix, name) for name in names)


def pair(store_id: str, sku_id: str) -> str:
    """The field naming one (store, sku) in the launch's hashes."""
    return f"{store_id}:{sku_id}"


def unit_member(store_id: str, sku_id: str, unit_no: int) -> str:
    """A free unit's member in the `free` sorted set."""
    return f"{store_id}:{sku_id}:{unit_no:08d}"
