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

    # One property per name in `LAUNCH_KEY_NAMES` (tests/test_script_keys.py checks), so a
    # misspelt key is an AttributeError that mypy finds, not a new key.
    @property
    def meta(self) -> str:
        return launch_key(self.launch_id, self.prefix, "meta")

    @property
    def free(self) -> str:
        return launch_key(self.launch_id, self.prefix, "free")

    @property
    def fresh(self) -> str:
        return launch_key(self.launch_id, self.prefix, "fresh")

    @property
    def holds(self) -> str:
        return launch_key(self.launch_id, self.prefix, "holds")

    @property
    def expiry(self) -> str:
        return launch_key(self.launch_id, self.prefix, "expiry")

    @property
    def confirming(self) -> str:
        return launch_key(self.launch_id, self.prefix, "confirming")

    @property
    def cust(self) -> str:
        return launch_key(self.launch_id, self.prefix, "cust")

    @property
    def held(self) -> str:
        return launch_key(self.launch_id, self.prefix, "held")

    @property
    def confirmed(self) -> str:
        return launch_key(self.launch_id, self.prefix, "confirmed")

    @property
    def allocated(self) -> str:
        return launch_key(self.launch_id, self.prefix, "allocated")

    @property
    def applied(self) -> str:
        return launch_key(self.launch_id, self.prefix, "applied")

    @property
    def evlog(self) -> str:
        return launch_key(self.launch_id, self.prefix, "evlog")

    @property
    def qpos(self) -> str:
        return launch_key(self.launch_id, self.prefix, "qpos")

    @property
    def prequeue(self) -> str:
        return launch_key(self.launch_id, self.prefix, "prequeue")

    @property
    def drawset(self) -> str:
        return launch_key(self.launch_id, self.prefix, "drawset")

    @property
    def qmeta(self) -> str:
        return launch_key(self.launch_id, self.prefix, "qmeta")

    @property
    def window(self) -> str:
        return launch_key(self.launch_id, self.prefix, "window")

    @property
    def shopping(self) -> str:
        return launch_key(self.launch_id, self.prefix, "shopping")

    @property
    def qrank(self) -> str:
        return launch_key(self.launch_id, self.prefix, "qrank")

    @property
    def placelog(self) -> str:
        return launch_key(self.launch_id, self.prefix, "placelog")

    @property
    def limits(self) -> str:
        return launch_key(self.launch_id, self.prefix, "limits")

    @property
    def left(self) -> str:
        return launch_key(self.launch_id, self.prefix, "left")

    @property
    def leftpre(self) -> str:
        return launch_key(self.launch_id, self.prefix, "leftpre")


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
