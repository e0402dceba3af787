"""What the queue does when a launch moves: open check-in, draw, publish settings."""

from __future__ import annotations

from typing import Protocol

from service.deps import Deps
from service.queue import draw
from service.stock.rebuild import ensure_loaded


class QueueSettings(Protocol):
    id: str
    state: str
    fairness_mode: str
    admit_rate: float
    active_cap: int
    admission_window_seconds: int


async def publish_admission(deps: Deps, launch: QueueSettings) -> None:
    """Rate, cap and window as the operator set them; the admit script reads them live."""
    await deps.redis.hset(
        deps.keys(launch.id).qmeta,
        mapping={
            "rate": launch.admit_rate,
            "cap": launch.active_cap,
            "window_ms": launch.admission_window_seconds * 1000,
        },
    )


async def on_state(deps: Deps, launch: QueueSettings, previous: str) -> None:
    """Called after every transition of `launch` (from `previous`)."""
    keys = deps.keys(launch.id)
    await publish_admission(deps, launch)
    queue_states = ("checkin_open", "selling", "sold_out", "closed")
    if launch.state == "registration_closed" and launch.fairness_mode == "prequeue-shuffle":
        await draw.commit(deps, launch.id)
    if launch.state in queue_states:
        # Open the queue once: a shuffled launch collects a pre-queue first.
        phase = "pre" if launch.fairness_mode == "prequeue-shuffle" else "drawn"
        await deps.redis.hsetnx(keys.qmeta, "phase", phase)
    if launch.state == "selling":
        await ensure_loaded(deps, launch.id)  # admission reads stock and "selling"
        if await deps.redis.hget(keys.qmeta, "phase") == "pre":
            await draw.run(deps, launch.id)
