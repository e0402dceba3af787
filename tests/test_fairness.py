"""The draw is fair: over many seeded draws every registration's place is uniform,
and checking in early buys nothing.

Chi-square p-values use the Wilson-Hilferty approximation (accurate for the large
degrees of freedom here), so no statistics package is needed.
"""

from __future__ import annotations

import math
import os
import random

from service.queue.draw import order

N = 100
DRAWS = int(os.environ.get("FAIRDROP_FAIRNESS_DRAWS", "10000"))
SEED = int(os.environ.get("FAIRDROP_FAIRNESS_SEED", "20261123"))


def chi2_sf(x: float, dof: int) -> float:
    """P(X ≥ x) for X ~ χ²(dof), by Wilson-Hilferty."""
    z = ((x / dof) ** (1 / 3) - (1 - 2 / (9 * dof))) / math.sqrt(2 / (9 * dof))
    return 0.5 * math.erfc(z / math.sqrt(2))


def chi2(table: list[list[int]]) -> tuple[float, int]:
    """Pearson's statistic of a table against independence (uniform margins here)."""
    rows, cols = len(table), len(table[0])
    total = sum(map(sum, table))
    row_sums = [sum(r) for r in table]
    col_sums = [sum(table[i][j] for i in range(rows)) for j in range(cols)]
    stat = 0.0
    for i in range(rows):
        for j in range(cols):
            expected = row_sums[i] * col_sums[j] / total
            stat += (table[i][j] - expected) ** 2 / expected
    return stat, (rows - 1) * (cols - 1)


def _positions() -> list[list[int]]:
    """counts[registration][position] over DRAWS seeded draws; registrations are listed
    in check-in order (index 0 checked in first)."""
    rng = random.Random(SEED)
    ids = [f"r{rng.getrandbits(60):015x}" for _ in range(N)]
    counts = [[0] * N for _ in range(N)]
    index = {pid: i for i, pid in enumerate(ids)}
    for _ in range(DRAWS):
        seed = rng.randbytes(32)
        for place, pid in enumerate(order(seed, ids)):
            counts[index[pid]][place] += 1
    return counts


COUNTS = _positions()


def test_chi_square_helper_rejects_a_biased_table() -> None:
    skewed = [
        [(DRAWS // N) * (2 if j < N // 2 and i < N // 2 else 1) for j in range(N)] for i in range(N)
    ]
    assert chi2_sf(*chi2(skewed)) < 1e-6


def test_each_registrations_place_is_uniform() -> None:
    expected = DRAWS / N
    p_values = []
    for row in COUNTS:
        stat = sum((c - expected) ** 2 / expected for c in row)
        p_values.append(chi2_sf(stat, N - 1))
    failing = [i for i, p in enumerate(p_values) if p <= 0.01]
    # Each test fails by chance with probability 0.01: about one of 100 may.
    assert len(failing) <= 5, f"seed {SEED}: registrations {failing} are not uniform"
    assert chi2_sf(*chi2(COUNTS)) > 0.01, f"seed {SEED}: places depend on the registration"


def test_place_is_independent_of_check_in_time() -> None:
    deciles = [[0] * 10 for _ in range(10)]
    for arrival, row in enumerate(COUNTS):
        for place, count in enumerate(row):
            deciles[arrival * 10 // N][place * 10 // N] += count
    stat, dof = chi2(deciles)
    assert chi2_sf(stat, dof) > 0.01, f"seed {SEED}: early check-in changes the place"
    early = sum(place * c for row in COUNTS[: N // 2] for place, c in enumerate(row))
    late = sum(place * c for row in COUNTS[N // 2 :] for place, c in enumerate(row))
    per_draw = (early - late) / DRAWS / (N // 2)
    assert abs(per_draw) < 1.0, f"seed {SEED}: early arrivals are {per_draw:.2f} places ahead"
