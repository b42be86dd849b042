"""Distribution shift between two months: population stability index (PSI), vectorised."""

from __future__ import annotations

import numpy as np

# Conventional reading of PSI: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 significant shift.
SIGNIFICANT_PSI = 0.25
_EPSILON = 1e-6


def _psi(expected_counts: np.ndarray, actual_counts: np.ndarray) -> float:
    expected = expected_counts / max(expected_counts.sum(), 1) + _EPSILON
    actual = actual_counts / max(actual_counts.sum(), 1) + _EPSILON
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def numeric_psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """PSI over the reference month's deciles."""
    reference = reference[np.isfinite(reference)]
    current = current[np.isfinite(current)]
    if len(reference) == 0 or len(current) == 0:
        return float("nan")
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    return _psi(
        np.bincount(np.searchsorted(edges, reference), minlength=len(edges) + 1),
        np.bincount(np.searchsorted(edges, current), minlength=len(edges) + 1),
    )


def categorical_psi(reference: np.ndarray, current: np.ndarray, categories: int) -> float:
    """PSI over integer categories 0..categories-1 (e.g. zone ids)."""
    return _psi(np.bincount(reference, minlength=categories), np.bincount(current, minlength=categories))
