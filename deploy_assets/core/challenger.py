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

from deploy_assets.core.model import rmse
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


def compare_predictions(
    actual: np.ndarray,
    champion: np.ndarray,
    challenger: np.ndarray,
    champion_version: str,
    challenger_version: str,
    threshold_minutes: float = DEFAULT_THRESHOLD_MINUTES,
) -> Comparison:
    n = len(actual)
    nan = float("nan")
    return Comparison(
        champion_version=str(champion_version),
        challenger_version=str(challenger_version),
        rides=int(n),
        champion_rmse=rmse(actual, champion) if n else nan,
        challenger_rmse=rmse(actual, challenger) if n else nan,
        mean_abs_diff=float(np.mean(np.abs(champion - challenger))) if n else nan,
        share_differing=float(np.mean(differs(champion, challenger, threshold_minutes))) if n else nan,
        threshold_minutes=float(threshold_minutes),
    )


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
