"""Outages injected into real processes: a worker killed, Postgres or Redis stopped or
frozen, Redis flushed in a lull. Each checks what the shoppers saw and the invariants
afterwards (`tests/serve.py:assert_consistent`)."""

from __future__ import annotations

import signal

import httpx

from service.deps import Deps
from tests.outage_kit import fairdrop_serve, wait_until
from tests.serve import server_env


def test_a_killed_worker_is_replaced_and_the_others_keep_serving(deps: Deps) -> None:
    with fairdrop_serve(server_env(deps.settings), workers=2) as served:
        wait_until(lambda: len(served.workers()) == 2, 30, "two workers")
        victim, survivor = served.workers()
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        # Meanwhile the other worker answers every request.
        for _ in range(20):
            assert httpx.get(f"{served.base}/healthz", timeout=5).status_code == 200
        wait_until(
            lambda: len(served.workers()) == 2 and victim.pid not in served.workers(),
            30,
            "a replacement worker",
        )
        assert served.proc.poll() is None, served.output()
        assert survivor.is_running()
        wait_until(served.healthy, 30, "answering after the respawn")
