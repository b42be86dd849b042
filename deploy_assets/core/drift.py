"""Distribution shift between two months: population stability index (PSI) over counts already tallied."""

from __future__ import annotations

import numpy as np

# Conventional reading of PSI: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 significant shift.
SIGNIFICANT_PSI = 0.25
_EPSILON = 1e-6


def _psi(expected_counts: np.ndarray, actual_counts: np.ndarray) -> float:
    expected = expected_counts / max(expected_counts.sum(), 1) + _EPSILON
    actual = actual_counts / max(actual_counts.sum(), 1) + _EPSILON
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def zone_psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """PSI over counts per zone id already tallied (e.g. from a month's zone-pair statistics)."""
    return _psi(np.asarray(reference_counts, dtype=np.float64), np.asarray(current_counts, dtype=np.float64))
