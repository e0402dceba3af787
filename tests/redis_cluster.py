"""A real Redis Cluster on loopback for the tests (`service/infra/local_cluster.py`):
three primaries, each its own `redis-server` process.

Without the binaries the cluster tests skip, unless FAIRDROP_REQUIRE_CLUSTER=1 (CI),
where a missing binary fails them instead.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from service.infra import local_cluster as cluster


@contextlib.contextmanager
def local_cluster(nodes: int = 3) -> Iterator[list[int]]:
    """Start a cluster of `nodes` primaries; yields their ports."""
    try:
        cluster.binaries()
    except cluster.ClusterUnavailable as exc:
        if os.environ.get("FAIRDROP_REQUIRE_CLUSTER") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    with cluster.local_cluster(nodes) as ports:
        yield ports
