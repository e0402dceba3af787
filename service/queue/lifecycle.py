"""What the queue does when a launch moves: open check-in, draw, publish settings."""

from __future__ import annotations

from typing import NamedTuple, Protocol

from service.deps import Deps
from service.queue import draw, leave, lottery, places
from service.stock.rebuild import ensure_loaded
from service.store import queue as qstore

QUEUE_STATES = ("checkin_open", "selling", "sold_out", "closed")


class AdmissionSettings(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def admit_rate(self) -> float: ...
    @property
    def active_cap(self) -> int: ...
    @property
    def admission_window_seconds(self) -> int: ...


class QueueSettings(Protocol):
    id: str
    state: str
    fairness_mode: str
    admit_rate: float
    active_cap: int
    admission_window_seconds: int


async def publish_admission(deps: Deps, launch: AdmissionSettings) -> None:
    """Rate, cap and window as the operator set them; the admit script reads them live."""
    await qstore.publish_admission(
        deps.scripts,
        deps.keys(launch.id),
        rate=launch.admit_rate,
        cap=launch.active_cap,
        window_ms=launch.admission_window_seconds * 1000,
    )


async def on_state(deps: Deps, launch: QueueSettings, previous: str) -> None:
    """Called after every transition of `launch` (from `previous`)."""
    keys = deps.keys(launch.id)
    await publish_admission(deps, launch)
    queue_states = QUEUE_STATES
    drawn_modes = ("prequeue-shuffle", "lottery")
    if launch.state == "registration_closed" and launch.fairness_mode in drawn_modes:
        await draw.commit(deps, launch.id)
    if launch.state in queue_states and launch.fairness_mode == "lottery":
        # The lottery is drawn as the waiting room opens; its order is the queue's.
        await lottery.draw_lottery(deps, launch.id)
    if launch.state in queue_states:
        # Open the queue once: a shuffled launch collects a pre-queue first.
        phase = "pre" if launch.fairness_mode == "prequeue-shuffle" else "drawn"
        await qstore.open_queue(deps.scripts, keys, phase)
    if launch.state == "selling":
        await ensure_loaded(deps, launch.id)  # admission reads stock and "selling"
        if await qstore.phase(deps.scripts, keys) == "pre":
            await draw.run(deps, launch.id)


async def save_counters(deps: Deps, snapshots: dict[str, tuple[int, int, int]]) -> None:
    """Keep each drawn queue's (qlen, admitted, lapsed) in Postgres for `restore`."""
    if not snapshots:
        return
    ids = list(snapshots)
    await deps.pool.execute(
        "INSERT INTO queue_state (launch_id, qlen, admitted, lapsed)"
        " SELECT * FROM unnest($1::text[], $2::int[], $3::int[], $4::int[])"
        " ON CONFLICT (launch_id) DO UPDATE SET qlen = greatest(queue_state.qlen, EXCLUDED.qlen),"
        " admitted = greatest(queue_state.admitted, EXCLUDED.admitted),"
        " lapsed = greatest(queue_state.lapsed, EXCLUDED.lapsed), saved_at = now()",
        ids,
        [snapshots[i][0] for i in ids],
        [snapshots[i][1] for i in ids],
        [snapshots[i][2] for i in ids],
    )


async def restore(deps: Deps, launch_id: str) -> bool:
    """Redis lost this launch's queue: rebuild it from Postgres. Tickets carry the ranks,
    so admission (a counter over ranks) resumes where it was saved, a few seconds ago
    at most; the drawn places come back from the draw, later ones from `queue_places`.
    Returns whether it restored."""
    launch = await deps.pool.fetchrow(
        "SELECT l.id, l.state, l.fairness_mode, l.admit_rate, l.active_cap,"
        " l.admission_window_seconds, d.drawn, d.revealed_at IS NOT NULL AS drawn_out,"
        " q.qlen, q.admitted, q.lapsed, q.rank_ceiling"
        " FROM launches l LEFT JOIN draws d ON d.launch_id = l.id"
        " LEFT JOIN queue_state q ON q.launch_id = l.id WHERE l.id = $1",
        launch_id,
    )
    if launch is None or launch["state"] not in QUEUE_STATES:
        return False
    keys = deps.keys(launch_id)
    drawn: list[int] = list(launch["drawn"] or [])
    shuffled = launch["fairness_mode"] == "prequeue-shuffle"
    phase = "pre" if shuffled and not launch["drawn_out"] else "drawn"
    if launch["fairness_mode"] == "lottery":
        qlen = await lottery.place(deps, launch_id, open_queue=False)  # only the invited
    else:
        await draw.place_ranks(deps, keys, drawn)
        qlen = len(drawn)
    # Places given after the draw, as far as the sweeper had kept them: nobody who
    # checks in again gets a new one. The newest (given in the second before the loss)
    # are below the rank ceiling, so new check-ins start past it: nobody new gets a rank
    # someone's ticket names.
    kept = await places.restore_places(deps, keys, launch_id)
    qlen = max(qlen, launch["qlen"] or 0, kept, launch["rank_ceiling"] or 0)
    restored = await qstore.queue_restore(
        deps.scripts,
        keys,
        now_ms=deps.clock.now_ms(),
        phase=phase,
        qlen=qlen,
        admitted=launch["admitted"] or 0,
        lapsed=launch["lapsed"] or 0,
        window_ms=launch["admission_window_seconds"] * 1000,
        cap=min(launch["active_cap"], 10_000),
    )
    if restored == 1:
        await leave.replay(deps, launch_id)
    await publish_admission(
        deps,
        _Settings(
            launch["id"],
            launch["admit_rate"],
            launch["active_cap"],
            launch["admission_window_seconds"],
        ),
    )
    return restored == 1


class _Settings(NamedTuple):
    id: str
    admit_rate: float
    active_cap: int
    admission_window_seconds: int
