"""The trip-duration model: the zoomcamp's linear regression on one-hot(PU_DO) + trip_distance, solved exactly.

The zoomcamp fits `DictVectorizer + LinearRegression` on per-row dicts. That model has one coefficient per zone
pair plus one for distance, so its least-squares solution has a closed form (the "fixed effects" estimator):
the distance slope comes from within-pair deviations, and each pair's intercept from its means. Computing it
with `np.bincount` is exact, O(rows), and predicting is one table lookup per ride — no sparse matrix, no dicts.
`ZonePairDurationRegressor` is a regular scikit-learn estimator, so MLflow's sklearn flavour logs and serves it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.base import BaseEstimator, RegressorMixin

from deploy_assets.core.features import (
    FEATURE_COLUMNS,
    MAX_DURATION_MINUTES,
    MIN_DURATION_MINUTES,
    MAX_ZONE_ID,
    ZONE_PAIR_COUNT,
    feature_arrays,
    zone_pair_codes,
)


class ZonePairDurationRegressor(RegressorMixin, BaseEstimator):
    """duration ≈ intercept[PU_DO] + slope · trip_distance, clipped to the 1–60 minutes it was trained on.

    smoothing: pseudo-count pulling each pair's intercept towards the overall intercept, so pairs seen only a
        few times do not get extreme estimates (0 reproduces plain least squares). Unseen pairs get the
        overall intercept.
    """

    def __init__(self, smoothing: float = 5.0):
        self.smoothing = smoothing

    def fit(self, X, y):
        pickup_zone, dropoff_zone, distance = _columns(X)
        y = np.asarray(y, dtype=np.float64)
        if len(y) == 0:
            raise ValueError("cannot fit a model on zero rides")
        codes = zone_pair_codes(pickup_zone, dropoff_zone)
        counts = np.bincount(codes, minlength=ZONE_PAIR_COUNT).astype(np.float64)
        seen = counts > 0
        safe_counts = np.where(seen, counts, 1.0)
        mean_distance = np.bincount(codes, weights=distance, minlength=ZONE_PAIR_COUNT) / safe_counts
        mean_duration = np.bincount(codes, weights=y, minlength=ZONE_PAIR_COUNT) / safe_counts

        centred_distance = distance - mean_distance[codes]
        spread = float(centred_distance @ centred_distance)
        slope = float(centred_distance @ (y - mean_duration[codes])) / spread if spread > 0 else 0.0

        pair_intercept = mean_duration - slope * mean_distance
        overall_intercept = float(np.average(pair_intercept[seen], weights=counts[seen]))
        shrunk = (counts * pair_intercept + self.smoothing * overall_intercept) / (counts + self.smoothing)
        self.intercept_by_pair_ = np.where(seen, np.nan_to_num(shrunk, nan=overall_intercept), overall_intercept)
        self.slope_ = slope
        self.intercept_ = overall_intercept
        self.n_pairs_seen_ = int(seen.sum())
        self.n_features_in_ = len(FEATURE_COLUMNS)
        return self

    def predict(self, X) -> np.ndarray:
        return self.predict_arrays(*_columns(X))

    def predict_arrays(
        self, pickup_zone: np.ndarray, dropoff_zone: np.ndarray, distance: np.ndarray
    ) -> np.ndarray:
        """Vectorised prediction from column arrays: one gather and one fused multiply-add."""
        for name, zones in (("PULocationID", pickup_zone), ("DOLocationID", dropoff_zone)):
            if len(zones) and (zones.min() < 0 or zones.max() > MAX_ZONE_ID):
                raise ValueError(f"{name} must be a TLC zone id between 1 and {MAX_ZONE_ID}")
        codes = zone_pair_codes(pickup_zone, dropoff_zone)
        predicted = self.intercept_by_pair_[codes] + self.slope_ * np.asarray(distance, dtype=np.float64)
        # Trained only on rides of 1–60 minutes: answers outside that range (a negative duration for a short ride
        # in a pair with a low intercept) are never closer to the truth than the range's ends.
        return np.clip(predicted, MIN_DURATION_MINUTES, MAX_DURATION_MINUTES, out=predicted)


def _columns(X) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Accept a DataFrame with the feature columns (MLflow pyfunc, web) or an (n, 3) array (sklearn)."""
    if isinstance(X, pd.DataFrame):
        missing = [name for name in FEATURE_COLUMNS if name not in X.columns]
        if missing:
            raise ValueError(f"missing feature columns: {missing}")
        return tuple(X[name].to_numpy() for name in FEATURE_COLUMNS)  # type: ignore[return-value]
    array = np.asarray(X)
    if array.ndim != 2 or array.shape[1] != len(FEATURE_COLUMNS):
        raise ValueError(f"expected an (n, {len(FEATURE_COLUMNS)}) array of {FEATURE_COLUMNS}")
    return array[:, 0].astype(np.int64), array[:, 1].astype(np.int64), array[:, 2].astype(np.float64)


def rmse(actual: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(actual) - np.asarray(predicted)) ** 2)))


def evaluate(model: ZonePairDurationRegressor, clean: pa.Table) -> float:
    """RMSE of `model` on a cleaned table (NaN when it has no rows)."""
    if clean.num_rows == 0:
        return float("nan")
    return rmse(clean["duration"].to_numpy(), model.predict_arrays(*feature_arrays(clean)))


@dataclass
class TrainedModel:
    model: ZonePairDurationRegressor
    holdout: pa.Table
    train_rows: int
    holdout_rows: int
    holdout_rmse: float
    train_rmse: float


def split_holdout(last_month: pa.Table, holdout_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (train, holdout) over `last_month`: its latest rides by pickup time are held out."""
    pickup = last_month["tpep_pickup_datetime"].cast(pa.int64()).to_numpy()
    if len(pickup) == 0 or holdout_fraction <= 0:
        return np.ones(len(pickup), dtype=bool), np.zeros(len(pickup), dtype=bool)
    cutoff = np.quantile(pickup, 1.0 - holdout_fraction, method="higher")
    holdout = pickup >= cutoff
    return ~holdout, holdout


def train_duration_model(
    earlier_months: list[pa.Table], holdout_fraction: float = 0.2, smoothing: float = 5.0
) -> TrainedModel:
    """Fit on cleaned months (oldest first), holding out the latest rides of the most recent one.

    The caller passes only months *before* the month to be scored; this function never sees that month.
    """
    if not earlier_months or sum(t.num_rows for t in earlier_months) == 0:
        raise ValueError("no cleaned rides to train on")
    *older, last = earlier_months
    train_mask, holdout_mask = split_holdout(last, holdout_fraction)
    train = pa.concat_tables([*older, last.filter(pa.array(train_mask))])
    holdout = last.filter(pa.array(holdout_mask))

    model = ZonePairDurationRegressor(smoothing=smoothing)
    model.fit(np.column_stack(feature_arrays(train)), train["duration"].to_numpy())
    return TrainedModel(
        model=model,
        holdout=holdout,
        train_rows=train.num_rows,
        holdout_rows=holdout.num_rows,
        holdout_rmse=evaluate(model, holdout),
        train_rmse=evaluate(model, train),
    )
