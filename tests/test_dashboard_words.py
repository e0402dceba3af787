"""Why admission is below the set rate, said from what is true: the launch's state and
pause are Postgres's (the worker's admission snapshot may be a refresh behind a
change), the queue and the stock the snapshot's."""

from __future__ import annotations

import msgspec

from service.admin import launches
from service.admin.dashboard import held_back
from service.deps import Deps
from service.queue.status import Snapshot
from tests.serve import selling_launch

DRAWN = Snapshot(
    phase="drawn", qlen=5, admitted=1, sold_out=False, active=1,
    lapsed=0, window_ms=120_000, at_ms=0, set_rate=5.0, cap=10, free=9, choosing=1,
    admitting=True,
)  # fmt: skip


async def test_each_reason_is_what_is_true(deps: Deps) -> None:
    await selling_launch(deps, units=5, registrations=1)
    selling = await launches.get_launch(deps, "drop")

    def why(snap: Snapshot, **launch: object) -> list[str]:
        return held_back(snap, msgspec.structs.replace(selling, **launch))

    # Resumed a moment ago; the snapshot has not seen it yet: nothing false is said.
    stale = msgspec.structs.replace(DRAWN, admitting=False)
    assert not any("not selling" in w for w in why(stale)), why(stale)
    assert why(DRAWN, paused=True) == [
        "The sale is paused: nobody new is admitted until it resumes."
    ]
    assert why(stale, state="sold_out") == [
        "Sold out: nothing is free or held, so nobody is admitted. Units that come back"
        " (a cancel, a hold that runs out) re-open admission."
    ]
    assert why(stale, state="closed") == ["The sale is closed, so nobody is admitted."]
    empty = msgspec.structs.replace(DRAWN, qlen=0, admitted=0, active=0, choosing=0)
    assert why(empty) == ["Nobody is in the queue yet: admission waits for people to check in."]
    all_in = msgspec.structs.replace(DRAWN, admitted=5)
    assert why(all_in) == [
        "The queue is empty: all 5 in it have been admitted, so admission waits for"
        " people to check in."
    ]
