"""Distribution shift between two months: population stability index (PSI) over counts already tallied."""

from __future__ import annotations

import numpy as np

# Conventional reading of PSI: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 significant shift.
SIGNIFICANT_PSI = 0.25
_EPSILON = 1e-6

# Fixed trip_distance bins (miles) for drift: fixed, not per-month quantiles, so counts tallied in any month (or
# batch) add up and compare bin by bin. Bin i holds [edge[i-1], edge[i]); below 0.5 and from 30 on are open bins.
DISTANCE_BIN_EDGES = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0, 10.0, 15.0, 20.0, 30.0)
DISTANCE_BIN_COUNT = len(DISTANCE_BIN_EDGES) + 1


def distance_bin_counts(distance: np.ndarray) -> np.ndarray:
    """Rides per DISTANCE_BIN_EDGES bin: tallied per batch while the rides are in hand, added up across batches."""
    bins = np.searchsorted(DISTANCE_BIN_EDGES, np.asarray(distance, dtype=np.float64), side="right")
    return np.bincount(bins, minlength=DISTANCE_BIN_COUNT).astype(np.float64)


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """PSI of `current_counts` against `reference_counts`, two histograms over the same bins (zone ids, distance
    bins, …) tallied when the data was read, so drift never re-reads a month."""
    reference = np.asarray(reference_counts, dtype=np.float64)
    current = np.asarray(current_counts, dtype=np.float64)
    expected = reference / max(reference.sum(), 1) + _EPSILON
    actual = current / max(current.sum(), 1) + _EPSILON
    return float(np.sum((actual - expected) * np.log(actual / expected)))
