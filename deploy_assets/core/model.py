"""The trip-duration model: the zoomcamp's linear regression on one-hot(PU_DO) + trip_distance, solved exactly.

The zoomcamp fits `DictVectorizer + LinearRegression` on per-row dicts. That model has one coefficient per zone
pair plus one for distance, so its least-squares solution has a closed form (the "fixed effects" estimator):
the distance slope comes from within-pair deviations, and each pair's intercept from its means. Computing it
with `np.bincount` is exact, O(rows), and predicting is one table lookup per ride — no sparse matrix, no dicts.
`ZonePairDurationRegressor` is a regular scikit-learn estimator, so MLflow's sklearn flavour logs and serves it.

Least squares gives a wrong distance unbounded pull on the one slope every pair shares: a ride whose odometer
reading is 60 miles off its pair's usual distance weighs on it like ~25,000 ordinary rides. The robust fit (the
default, `DistanceBound`) bounds each ride's distance to its pair's mean ± a few typical within-pair deviations
before solving the same closed form, so what slips through the ride rules barely moves the coefficients.

On a dataset without a distance (FHV) the same estimator has no slope (`uses_distance=False`): each pair's
intercept is its mean duration, smoothed, which is what the zoomcamp's one-hot regression on zones alone fits.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.base import BaseEstimator, RegressorMixin

from deploy_assets.core.batches import BatchSource, table_batch_source
from deploy_assets.core.drift import DISTANCE_BIN_COUNT, DISTANCE_BIN_EDGES, distance_bin_counts
from deploy_assets.core.datasets import DISTANCE, ZONE_COLUMNS
from deploy_assets.core.features import (
    FEATURE_COLUMNS,
    MAX_DURATION_MINUTES,
    MIN_DURATION_MINUTES,
    MAX_ZONE_ID,
    MISSING_ZONE,
    ZONE_PAIR_COUNT,
    feature_arrays,
    zone_pair_codes,
)


@dataclass(frozen=True)
class ZonePairStatistics:
    """Everything the closed-form fit needs, per zone pair: additive over batches and months, one row a pair.

    Per pair: rides, mean distance, mean duration, Σ(d − d̄)² and Σ(d − d̄)(y − ȳ) (centred, so no cancellation
    of large raw sums). `a + b` merges two sets of rides exactly (Chan et al.'s pairwise update), so a month's
    statistics computed while it is ingested combine with other months' into a training window's.

    Beside them, for drift only (the fit never reads it): rides per fixed trip-distance bin, also additive.
    Rides without a distance (FHV) count as distance 0 (no slope to fit) and have no distance histogram.
    """

    count: np.ndarray
    mean_distance: np.ndarray
    mean_duration: np.ndarray
    distance_m2: np.ndarray
    co_moment: np.ndarray
    # Rides per DISTANCE_BIN_EDGES bin; None when unknown (a month stored before they were recorded, or with other
    # bins), and then None in any sum it is part of: a window's histogram is whole or missing, never partial.
    distance_counts: np.ndarray | None

    @classmethod
    def empty(cls) -> ZonePairStatistics:
        return cls(*(np.zeros(ZONE_PAIR_COUNT) for _ in _PAIR_FIELDS), np.zeros(DISTANCE_BIN_COUNT))

    @classmethod
    def from_arrays(
        cls, pickup_zone: np.ndarray, dropoff_zone: np.ndarray, distance: np.ndarray | None, duration: np.ndarray
    ) -> ZonePairStatistics:
        codes = zone_pair_codes(pickup_zone, dropoff_zone)
        histogram = distance_bin_counts(distance) if distance is not None else None
        distance = np.asarray(distance, dtype=np.float64) if distance is not None else np.zeros(len(codes))
        duration = np.asarray(duration, dtype=np.float64)
        count = np.bincount(codes, minlength=ZONE_PAIR_COUNT).astype(np.float64)
        safe_count = np.where(count > 0, count, 1.0)
        mean_distance = np.bincount(codes, weights=distance, minlength=ZONE_PAIR_COUNT) / safe_count
        mean_duration = np.bincount(codes, weights=duration, minlength=ZONE_PAIR_COUNT) / safe_count
        centred_distance = distance - mean_distance[codes]
        centred_duration = duration - mean_duration[codes]
        return cls(
            count,
            mean_distance,
            mean_duration,
            np.bincount(codes, weights=centred_distance * centred_distance, minlength=ZONE_PAIR_COUNT),
            np.bincount(codes, weights=centred_distance * centred_duration, minlength=ZONE_PAIR_COUNT),
            histogram,
        )

    @classmethod
    def from_table(cls, clean: pa.Table | pa.RecordBatch) -> ZonePairStatistics:
        """Statistics of cleaned rides (CLEAN_SCHEMA columns)."""
        return cls.from_arrays(*feature_arrays(clean), clean["duration"].to_numpy())

    @classmethod
    def from_batches(cls, batches: Iterable[pa.RecordBatch]) -> ZonePairStatistics:
        statistics = cls.empty()
        for batch in batches:
            statistics += cls.from_table(batch)
        return statistics

    def __add__(self, other: ZonePairStatistics) -> ZonePairStatistics:
        n_a, n_b = self.count, other.count
        n = n_a + n_b
        weight_b = n_b / np.where(n > 0, n, 1.0)
        delta_distance = other.mean_distance - self.mean_distance
        delta_duration = other.mean_duration - self.mean_duration
        merged = (
            n,
            self.mean_distance + delta_distance * weight_b,
            self.mean_duration + delta_duration * weight_b,
            self.distance_m2 + other.distance_m2 + delta_distance**2 * n_a * weight_b,
            self.co_moment + other.co_moment + delta_distance * delta_duration * n_a * weight_b,
        )
        known = self.distance_counts is not None and other.distance_counts is not None
        # A pair seen on one side only keeps that side's numbers exactly.
        return ZonePairStatistics(
            *(
                np.where(n_a == 0, b, np.where(n_b == 0, a, m))
                for a, b, m in zip(self._pair_arrays(), other._pair_arrays(), merged)
            ),
            self.distance_counts + other.distance_counts if known else None,
        )

    def _pair_arrays(self) -> tuple[np.ndarray, ...]:
        return tuple(getattr(self, name) for name in _PAIR_FIELDS)

    @property
    def rides(self) -> int:
        return int(self.count.sum())

    def zone_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Rides per pickup zone and per dropoff zone (index = `zone_index`), e.g. for drift without a re-read."""
        by_pair = self.count.reshape(MAX_ZONE_ID + 1, MAX_ZONE_ID + 1)
        return by_pair.sum(axis=1).astype(np.int64), by_pair.sum(axis=0).astype(np.int64)

    def to_table(self) -> pa.Table:
        """The seen pairs only (a few thousand rows): small enough to store beside the month. The distance
        histogram is not per pair, so it goes in the schema metadata (kept by Parquet), with the bins it counts."""
        seen = np.flatnonzero(self.count > 0)
        columns = {"zone_pair": pa.array(seen.astype(np.int32))}
        columns.update({name: pa.array(getattr(self, name)[seen]) for name in _PAIR_FIELDS})
        table = pa.table(columns)
        if self.distance_counts is None:
            return table
        histogram = {"edges": list(DISTANCE_BIN_EDGES), "counts": self.distance_counts.astype(np.int64).tolist()}
        return table.replace_schema_metadata({_DISTANCE_METADATA_KEY: json.dumps(histogram)})

    @classmethod
    def from_stored(cls, table: pa.Table) -> ZonePairStatistics:
        """Inverse of to_table. A table without the distance histogram (written by older code), or with other
        bins, loads with distance_counts None."""
        pairs = table["zone_pair"].to_numpy()
        arrays = []
        for name in _PAIR_FIELDS:
            dense = np.zeros(ZONE_PAIR_COUNT)
            dense[pairs] = table[name].to_numpy()
            arrays.append(dense)
        stored = (table.schema.metadata or {}).get(_DISTANCE_METADATA_KEY)
        histogram = json.loads(stored) if stored is not None else None
        same_bins = histogram is not None and tuple(histogram["edges"]) == DISTANCE_BIN_EDGES
        return cls(*arrays, np.asarray(histogram["counts"], dtype=np.float64) if same_bins else None)


_PAIR_FIELDS = ("count", "mean_distance", "mean_duration", "distance_m2", "co_moment")
_DISTANCE_METADATA_KEY = b"deploy_assets.distance_bin_counts"

# How many typical within-pair deviations a ride's distance may lie from its pair's mean before it is bounded.
DEVIATION_BOUND = 6.0


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2.0)])


@dataclass(frozen=True)
class DistanceBound:
    """Bounded inputs for the robust fit: each ride's distance clipped to its pair's mean ± `half_width`.

    Why this and not a robust loss: it keeps the fit a closed form over additive statistics (exact, by batches,
    in the memory of one batch), at the price of one more pass over the rides. The width is DEVIATION_BOUND times
    the median (over rides) of the pairs' own standard deviations: a median, so a few corrupted pairs do not
    widen it, and per ride, so a wrong distance in a busy pair is bounded too. A bounded ride still counts with
    its duration; only its leverage on the shared slope is capped. Honest rides are rarely bounded (0.05% of a
    generated month, by about a mile at most). The centre is a plain mean, so it relies on the ride rules having
    dropped the absurd readings: what is left can shift a pair's centre by at most max_distance / rides.
    """

    centre: np.ndarray  # mean distance per zone pair
    half_width: float

    @classmethod
    def of(cls, statistics: ZonePairStatistics) -> DistanceBound:
        several = statistics.count >= 2
        if not several.any():
            return cls(statistics.mean_distance, float("inf"))
        spread = np.sqrt(statistics.distance_m2[several] / statistics.count[several])
        scale = _weighted_median(spread, statistics.count[several])
        return cls(statistics.mean_distance, DEVIATION_BOUND * scale if scale > 0 else float("inf"))

    def apply(self, pickup_zone: np.ndarray, dropoff_zone: np.ndarray, distance: np.ndarray) -> tuple[np.ndarray, int]:
        """The bounded distances, and how many rides were bounded."""
        centre = self.centre[zone_pair_codes(pickup_zone, dropoff_zone)]
        distance = np.asarray(distance, dtype=np.float64)
        bounded = np.clip(distance, centre - self.half_width, centre + self.half_width)
        return bounded, int(np.count_nonzero(bounded != distance))

    def statistics(self, rides: Iterable[pa.RecordBatch | pa.Table]) -> tuple[ZonePairStatistics, int]:
        """Statistics of cleaned rides with a distance (by batches) with bounded distances, and the rides bounded."""
        statistics, bounded_rides = ZonePairStatistics.empty(), 0
        for batch in rides:
            pickup_zone, dropoff_zone, distance = feature_arrays(batch)
            if distance is None:
                raise ValueError("rides without trip_distance have no distance to bound")
            bounded, count = self.apply(pickup_zone, dropoff_zone, distance)
            statistics += ZonePairStatistics.from_arrays(pickup_zone, dropoff_zone, bounded, batch["duration"].to_numpy())
            bounded_rides += count
        return statistics, bounded_rides


class ZonePairDurationRegressor(RegressorMixin, BaseEstimator):
    """duration ≈ intercept[PU_DO] + slope · trip_distance, clipped to the 1–60 minutes it was trained on.

    smoothing: pseudo-count pulling each pair's intercept towards the overall intercept, so pairs seen only a
        few times do not get extreme estimates (0 with robust=False reproduces plain least squares). Unseen pairs
        get the overall intercept.
    robust: bound each ride's distance first (`DistanceBound`); `rides_bounded_` says how many were.
    uses_distance: False for a dataset without one (FHV): zone pairs only, no slope; its inputs are the zones.
    """

    def __init__(self, smoothing: float = 5.0, robust: bool = True, uses_distance: bool = True):
        self.smoothing = smoothing
        self.robust = robust
        self.uses_distance = uses_distance

    @property
    def feature_columns(self) -> tuple[str, ...]:
        """The ride columns it reads, in `predict_arrays` order (a model registered before `uses_distance`
        existed reads the distance)."""
        return FEATURE_COLUMNS if getattr(self, "uses_distance", True) else ZONE_COLUMNS

    def fit(self, X, y):
        columns = dict(zip(self.feature_columns, _columns(X, self.feature_columns)))
        rides = pa.table({**columns, "duration": y})
        return self.fit_rides(ZonePairStatistics.from_table(rides), lambda: [rides])

    @classmethod
    def from_statistics(
        cls,
        statistics: ZonePairStatistics,
        rides: Callable[[], Iterable[pa.RecordBatch]] | None = None,
        smoothing: float = 5.0,
        robust: bool = True,
        uses_distance: bool = True,
    ) -> ZonePairDurationRegressor:
        """Fitted from the rides' statistics; the robust fit also reads the rides (`rides()`: their batches)."""
        return cls(smoothing=smoothing, robust=robust, uses_distance=uses_distance).fit_rides(statistics, rides)

    def fit_rides(
        self, statistics: ZonePairStatistics, rides: Callable[[], Iterable[pa.RecordBatch]] | None
    ) -> ZonePairDurationRegressor:
        """Plain least squares from `statistics`, or (robust) from the statistics of the same rides with bounded
        distances, one more pass over `rides()`. Without a distance there is nothing to bound."""
        if not self.robust or not self.uses_distance:
            self.rides_bounded_ = 0
            return self.fit_statistics(statistics)
        if rides is None:
            raise ValueError("the robust fit reads the rides again: pass them, or robust=False")
        bounded, self.rides_bounded_ = DistanceBound.of(statistics).statistics(rides())
        return self.fit_statistics(bounded)

    def fit_statistics(self, statistics: ZonePairStatistics) -> ZonePairDurationRegressor:
        """The least-squares coefficients from per-pair statistics alone (what fit computes from rows)."""
        counts = statistics.count
        if counts.sum() == 0:
            raise ValueError("cannot fit a model on zero rides")
        seen = counts > 0
        # Fixed effects: the slope from within-pair deviations, each pair's intercept from its means.
        spread = float(statistics.distance_m2.sum())
        slope = float(statistics.co_moment.sum()) / spread if spread > 0 else 0.0

        pair_intercept = statistics.mean_duration - slope * statistics.mean_distance
        overall_intercept = float(np.average(pair_intercept[seen], weights=counts[seen]))
        shrunk = (counts * pair_intercept + self.smoothing * overall_intercept) / (counts + self.smoothing)
        self.intercept_by_pair_ = np.where(seen, np.nan_to_num(shrunk, nan=overall_intercept), overall_intercept)
        self.slope_ = slope
        self.intercept_ = overall_intercept
        self.n_pairs_seen_ = int(seen.sum())
        self.n_features_in_ = len(self.feature_columns)
        return self

    def predict(self, X) -> np.ndarray:
        return self.predict_arrays(*_columns(X, self.feature_columns))

    def predict_arrays(
        self, pickup_zone: np.ndarray, dropoff_zone: np.ndarray, distance: np.ndarray | None = None
    ) -> np.ndarray:
        """Vectorised prediction from column arrays: one gather and one fused multiply-add (a model without a
        distance ignores `distance`)."""
        for name, zones in (("PULocationID", pickup_zone), ("DOLocationID", dropoff_zone)):
            if len(zones) and (zones.min() < MISSING_ZONE or zones.max() > MAX_ZONE_ID):
                raise ValueError(f"{name} must be a TLC zone id between 1 and {MAX_ZONE_ID} (or {MISSING_ZONE}: unknown)")
        codes = zone_pair_codes(pickup_zone, dropoff_zone)
        if DISTANCE not in self.feature_columns:
            return np.clip(self.intercept_by_pair_[codes], MIN_DURATION_MINUTES, MAX_DURATION_MINUTES)
        if distance is None:
            raise ValueError(f"this model reads {DISTANCE}: pass the rides' distances")
        predicted = self.intercept_by_pair_[codes] + self.slope_ * np.asarray(distance, dtype=np.float64)
        # Trained only on rides of 1–60 minutes: answers outside that range (a negative duration for a short ride
        # in a pair with a low intercept) are never closer to the truth than the range's ends.
        return np.clip(predicted, MIN_DURATION_MINUTES, MAX_DURATION_MINUTES, out=predicted)


def _columns(X, names: tuple[str, ...] = FEATURE_COLUMNS) -> tuple[np.ndarray, ...]:
    """Accept a DataFrame with the feature columns `names` (MLflow pyfunc, web) or an (n, len(names)) array
    (sklearn): zones as int64, the distance as float64."""
    if isinstance(X, pd.DataFrame):
        missing = [name for name in names if name not in X.columns]
        if missing:
            raise ValueError(f"missing feature columns: {missing}")
        return tuple(X[name].to_numpy() for name in names)
    array = np.asarray(X)
    if array.ndim != 2 or array.shape[1] != len(names):
        raise ValueError(f"expected an (n, {len(names)}) array of {names}")
    return tuple(array[:, i].astype(np.float64 if name == DISTANCE else np.int64) for i, name in enumerate(names))


def rmse(actual: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(actual) - np.asarray(predicted)) ** 2)))


class SquaredErrors:
    """Running count and sum of squared errors: an RMSE over batches without holding them."""

    def __init__(self) -> None:
        self.rows = 0
        self.total = 0.0

    def add(self, actual: np.ndarray, predicted: np.ndarray) -> None:
        self.rows += len(actual)
        self.total += float(np.sum((np.asarray(actual) - np.asarray(predicted)) ** 2))

    @property
    def rmse(self) -> float:
        """NaN when no row was added."""
        return float(np.sqrt(self.total / self.rows)) if self.rows else float("nan")


PICKUP = "tpep_pickup_datetime"


def evaluation_columns(features: Sequence[str] = FEATURE_COLUMNS) -> tuple[str, ...]:
    """What training and evaluation read of a cleaned month with these ride features."""
    return (*features, "duration")


EVALUATION_COLUMNS = evaluation_columns()


def evaluate_batches(model: ZonePairDurationRegressor, batches: Iterable[pa.RecordBatch]) -> float:
    """RMSE of `model` on cleaned rides given by batches (NaN when there are none)."""
    errors = SquaredErrors()
    for batch in batches:
        errors.add(batch["duration"].to_numpy(), model.predict_arrays(*feature_arrays(batch)))
    return errors.rmse


def evaluate(model: ZonePairDurationRegressor, clean: pa.Table) -> float:
    """RMSE of `model` on a cleaned table (NaN when it has no rows)."""
    return evaluate_batches(model, clean.combine_chunks().to_batches())


def _pickup_us(batch: pa.RecordBatch) -> np.ndarray:
    return batch[PICKUP].cast(pa.int64()).to_numpy()


def holdout_rank(rides: int, holdout_fraction: float) -> int:
    """Rank (0-based, by pickup time) of the first held-out ride: np.quantile(pickup, 1 − f, method="higher")."""
    return int(np.ceil((rides - 1) * (1.0 - holdout_fraction)))


# Bins of the pickup histogram that finds the hold-out cutoff in a stream (4 Mi int64 = 32 MiB).
_CUTOFF_BINS = 1 << 22


def holdout_start(month: BatchSource, holdout_fraction: float) -> int | None:
    """The pickup time (epoch µs) from which a cleaned month's rides are held out, or None when none are.

    Held out: every ride with pickup ≥ the `holdout_rank`-th pickup — the latest `holdout_fraction` (ties
    included). Found exactly in bounded memory by reading the pickup column three times: its range, a histogram
    locating the bin of that rank, then the pickups of that one bin.
    """
    if holdout_fraction <= 0:
        return None
    rides, low, high = 0, None, None
    for batch in month([PICKUP]):
        pickup = _pickup_us(batch)
        if len(pickup):
            rides += len(pickup)
            low = pickup.min() if low is None else min(low, pickup.min())
            high = pickup.max() if high is None else max(high, pickup.max())
    if rides == 0:
        return None
    rank = holdout_rank(rides, holdout_fraction)
    width = max(1, -(-(int(high) - int(low) + 1) // _CUTOFF_BINS))
    histogram = np.zeros((int(high) - int(low)) // width + 1, dtype=np.int64)
    for batch in month([PICKUP]):
        histogram += np.bincount((_pickup_us(batch) - low) // width, minlength=len(histogram))
    below = np.cumsum(histogram)
    target = int(np.searchsorted(below, rank, side="right"))
    bin_start = int(low) + target * width
    if width == 1:
        return bin_start
    in_bin = [p[(p >= bin_start) & (p < bin_start + width)] for p in map(_pickup_us, month([PICKUP]))]
    rank_in_bin = rank - (int(below[target - 1]) if target else 0)
    return int(np.partition(np.concatenate(in_bin), rank_in_bin)[rank_in_bin])


def holdout_batches(month: BatchSource, start: int | None, columns: Sequence[str] = EVALUATION_COLUMNS):
    """The held-out rides of a month (pickup ≥ start), by batches: e.g. to score the champion on them."""
    if start is None:
        return
    for batch in month(list(dict.fromkeys([*columns, PICKUP]))):
        yield batch.filter(pa.array(_pickup_us(batch) >= start)).select(list(columns))


@dataclass
class TrainedModel:
    model: ZonePairDurationRegressor
    # The held-out rides in memory (train_duration_model only; streamed training re-reads them: holdout_batches).
    holdout: pa.Table | None
    train_rows: int
    holdout_rows: int
    holdout_rmse: float
    train_rmse: float
    holdout_start: int | None = None  # pickup (epoch µs) from which the last month's rides are held out
    rides_bounded: int | None = None  # rides whose distance the robust fit bounded (None: not a built-in fit)


def train_from_batches(
    months: Sequence[BatchSource],
    holdout_fraction: float = 0.2,
    smoothing: float = 5.0,
    statistics: Sequence[ZonePairStatistics | None] | None = None,
    robust: bool = True,
    features: Sequence[str] = FEATURE_COLUMNS,
) -> TrainedModel:
    """Fit on cleaned months (oldest first) with these ride features by batches, holding out the latest rides of
    the most recent one.

    Memory is bounded by a batch and the per-pair statistics, whatever the months' sizes. `statistics[i]`, when
    given (e.g. recorded at ingest), replaces the statistics pass over an older month `i`; the last month is
    always read, since its split depends on the hold-out. The caller passes only months *before* the month to
    be scored; this function never sees that month.
    """
    if not months:
        raise ValueError("no cleaned rides to train on")
    *older, last = months
    known = list(statistics or []) + [None] * len(months)
    start = holdout_start(last, holdout_fraction)
    columns = evaluation_columns(features)

    def last_training():
        return (
            batch if start is None else batch.filter(pa.array(_pickup_us(batch) < start))
            for batch in last([*columns, PICKUP])
        )

    def training_rides():
        for month in older:
            yield from month(columns)
        yield from last_training()

    training = ZonePairStatistics.empty()
    for month, recorded in zip(older, known):
        training += recorded if recorded is not None else ZonePairStatistics.from_batches(month(columns))
    training += ZonePairStatistics.from_batches(last_training())
    if training.rides == 0:
        raise ValueError("no cleaned rides to train on")
    model = ZonePairDurationRegressor.from_statistics(
        training, training_rides, smoothing=smoothing, robust=robust, uses_distance=DISTANCE in features
    )

    train_errors, holdout_errors = SquaredErrors(), SquaredErrors()
    for month in older:
        for batch in month(columns):
            train_errors.add(batch["duration"].to_numpy(), model.predict_arrays(*feature_arrays(batch)))
    for batch in last([*columns, PICKUP]):
        held_out = _pickup_us(batch) >= start if start is not None else np.zeros(batch.num_rows, dtype=bool)
        actual, predicted = batch["duration"].to_numpy(), model.predict_arrays(*feature_arrays(batch))
        train_errors.add(actual[~held_out], predicted[~held_out])
        holdout_errors.add(actual[held_out], predicted[held_out])
    return TrainedModel(
        model=model,
        holdout=None,
        train_rows=training.rides,
        holdout_rows=holdout_errors.rows,
        holdout_rmse=holdout_errors.rmse,
        train_rmse=train_errors.rmse,
        holdout_start=start,
        rides_bounded=model.rides_bounded_,
    )


def train_duration_model(
    earlier_months: list[pa.Table], holdout_fraction: float = 0.2, smoothing: float = 5.0, robust: bool = True
) -> TrainedModel:
    """train_from_batches on months in memory (their columns say whether the rides have a distance), also
    returning the held-out rides as a table."""
    if not earlier_months or sum(t.num_rows for t in earlier_months) == 0:
        raise ValueError("no cleaned rides to train on")
    sources = [table_batch_source(table) for table in earlier_months]
    features = FEATURE_COLUMNS if DISTANCE in earlier_months[-1].column_names else ZONE_COLUMNS
    trained = train_from_batches(sources, holdout_fraction, smoothing, robust=robust, features=features)
    last = earlier_months[-1]
    trained.holdout = pa.Table.from_batches(
        list(holdout_batches(sources[-1], trained.holdout_start, last.column_names)), last.schema
    )
    return trained
