"""Champion vs challenger on the same rides: the numbers a shadow check plots, and the shadow output's writer.

`@challenger` is scored in shadow: never published to the predictions table. For a month, `compare_models` scores
the cleaned rides with both versions and returns the comparison (RMSE of each against the actual durations, mean
absolute difference, share of rides where they differ by more than `threshold_minutes`) and the challenger's
predictions, for a `ShadowWriter` (any object with `write_month(year, month, table) -> uri`, such as a
`PredictionStore` rooted at a shadow prefix). The online shadow mode (`serving.shadow`) uses the same rule.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np
import pyarrow as pa

from deploy_assets.core.model import SquaredErrors
from deploy_assets.core.scoring import score_trips

DEFAULT_THRESHOLD_MINUTES = 5.0


def differs(champion: np.ndarray, challenger: np.ndarray, threshold_minutes: float) -> np.ndarray:
    """The one rule for "the two models disagree on this ride": more than `threshold_minutes` apart."""
    return np.abs(np.asarray(champion) - np.asarray(challenger)) > threshold_minutes


@dataclass(frozen=True)
class Comparison:
    champion_version: str
    challenger_version: str
    rides: int
    champion_rmse: float
    challenger_rmse: float
    mean_abs_diff: float
    share_differing: float
    threshold_minutes: float

    def metadata(self) -> dict:
        """Flat numbers (and the two versions) for asset-check metadata the UI plots per month."""
        return asdict(self)


class ComparisonTotals:
    """The comparison accumulated over batches of the same rides (bounded memory): `add` per batch, `result()`.

    `actual` may be omitted (online shadow mode has no actual durations): the RMSEs are then NaN."""

    def __init__(self, champion_version: str, challenger_version: str, threshold_minutes: float = DEFAULT_THRESHOLD_MINUTES):
        self.champion_version, self.challenger_version = str(champion_version), str(challenger_version)
        self.threshold_minutes = float(threshold_minutes)
        self.champion_errors, self.challenger_errors = SquaredErrors(), SquaredErrors()
        self.rides, self.abs_diff, self.differing = 0, 0.0, 0

    def add(self, champion: np.ndarray, challenger: np.ndarray, actual: np.ndarray | None = None) -> None:
        champion, challenger = np.asarray(champion, dtype=np.float64), np.asarray(challenger, dtype=np.float64)
        self.rides += len(champion)
        self.abs_diff += float(np.abs(champion - challenger).sum())
        self.differing += int(np.count_nonzero(differs(champion, challenger, self.threshold_minutes)))
        if actual is not None:
            self.champion_errors.add(actual, champion)
            self.challenger_errors.add(actual, challenger)

    def result(self) -> Comparison:
        n = self.rides
        return Comparison(
            champion_version=self.champion_version,
            challenger_version=self.challenger_version,
            rides=n,
            champion_rmse=self.champion_errors.rmse,
            challenger_rmse=self.challenger_errors.rmse,
            mean_abs_diff=self.abs_diff / n if n else float("nan"),
            share_differing=self.differing / n if n else float("nan"),
            threshold_minutes=self.threshold_minutes,
        )


def compare_predictions(
    actual: np.ndarray,
    champion: np.ndarray,
    challenger: np.ndarray,
    champion_version: str,
    challenger_version: str,
    threshold_minutes: float = DEFAULT_THRESHOLD_MINUTES,
) -> Comparison:
    totals = ComparisonTotals(champion_version, challenger_version, threshold_minutes)
    totals.add(champion, challenger, actual)
    return totals.result()


def compare_models(
    clean: pa.Table,
    champion,
    challenger,
    champion_version: str,
    challenger_version: str,
    threshold_minutes: float = DEFAULT_THRESHOLD_MINUTES,
    champion_predictions: pa.Table | None = None,
) -> tuple[Comparison, pa.Table]:
    """Score `clean` with both models (or reuse the champion's published predictions) and compare them.

    Returns the comparison and the challenger's predictions table (the shadow output, never published)."""
    if champion_predictions is None:
        champion_predictions = score_trips(clean, champion, champion_version)
    shadow = score_trips(clean, challenger, challenger_version)
    comparison = compare_predictions(
        clean["duration"].to_numpy(),
        champion_predictions["predicted_duration"].to_numpy(),
        shadow["predicted_duration"].to_numpy(),
        champion_version,
        challenger_version,
        threshold_minutes,
    )
    return comparison, shadow


class ShadowWriter(Protocol):
    """Where shadow predictions go (e.g. `PredictionStore(uri=".../predictions-shadow")`): never the published
    predictions location nor the SQL table."""

    def write_month(self, year: int, month: int, predictions: pa.Table) -> str: ...
