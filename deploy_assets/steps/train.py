"""The training step: month M's model, fitted on the months before M (never on M), tested on M, registered once.

It is registered at most once per (month, training data): the step looks the version up by its training data
version before registering, so a retried or repeated run finds the model it registered before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from deploy_assets.core.batches import BatchSource, table_digest
from deploy_assets.core.contract import as_deployable
from deploy_assets.core.datasets import DISTANCE
from deploy_assets.core.drift import DISTANCE_BIN_COUNT, SIGNIFICANT_PSI, distance_bin_counts, psi
from deploy_assets.core.features import FEATURE_COLUMNS, MAX_ZONE_ID, zone_index
from deploy_assets.core.model import (
    SquaredErrors,
    TrainedModel,
    ZonePairDurationRegressor,
    ZonePairStatistics,
    evaluation_columns,
)
from deploy_assets.core.registry import RegistryClient
from deploy_assets.core.training import BUILTIN, train_model
from deploy_assets.steps.findings import Findings, StepFailure

MODEL_CODE_VERSION = "3"
MODEL_CHECKS = {
    "duration_model_quality": (False, "RMSE on the month it scores is finite and beats predicting the mean"),
    "duration_model_drift": (
        False,
        "pickup/dropoff zones and trip distance of the month it scores vs its training months, as PSI (a warning)",
    ),
}

# A training spec: {"estimator": "builtin" or a dotted path, "params": {...}, "features": [...] (optional)}.
TrainingSpec = Mapping[str, Any]


def training_data_version(partition_keys: list[str], training: list[pa.Table], spec: TrainingSpec) -> str:
    """What the model learns from: the statistics of every training month (a function of its rows, recorded
    when it was ingested) and the training spec. Equal inputs give an equal version, so a repeated or retried
    run finds the model it registered before; a month re-ingested from other bytes gives another.

    Content, not Dagster's data version of trip_statistics: Dagster derives that from the data versions of its
    inputs' materializations only (not from observations), so it would not follow landing_file's ETag.
    """
    parts = [f"code={MODEL_CODE_VERSION}", f"config={json.dumps(dict(spec), separators=(',', ':'), ensure_ascii=False)}"]
    parts += [f"{key}={table_digest(table)}" for key, table in zip(partition_keys, training, strict=True)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


@dataclass
class MonthTest:
    """A model's errors on the month it will score, read by batches, and that month's zone and trip-distance
    counts (for drift)."""

    errors: SquaredErrors
    baseline: SquaredErrors
    pickup_zones: np.ndarray
    dropoff_zones: np.ndarray
    distance_bins: np.ndarray


def test_on_month(model, month: BatchSource, columns: list[str], mean_duration: float) -> MonthTest:
    """The model's errors on a stored month with these columns (the deployment's cleaned schema)."""
    deployable = as_deployable(model)
    test = MonthTest(
        SquaredErrors(),
        SquaredErrors(),
        np.zeros(MAX_ZONE_ID + 1),
        np.zeros(MAX_ZONE_ID + 1),
        np.zeros(DISTANCE_BIN_COUNT),
    )
    for batch in month(columns):
        actual = batch["duration"].to_numpy()
        test.errors.add(actual, deployable.predict_rides(batch))
        test.baseline.add(actual, np.full(len(actual), mean_duration))
        test.pickup_zones += np.bincount(zone_index(batch["PULocationID"].to_numpy()), minlength=MAX_ZONE_ID + 1)
        test.dropoff_zones += np.bincount(zone_index(batch["DOLocationID"].to_numpy()), minlength=MAX_ZONE_ID + 1)
        if DISTANCE in columns:
            test.distance_bins += distance_bin_counts(batch[DISTANCE].to_numpy())
    return test


def rmse_on(model, month: BatchSource, columns: list[str]) -> float:
    """RMSE of any deployable model on a stored month with these columns, read by batches."""
    deployable, errors = as_deployable(model), SquaredErrors()
    for batch in month(columns):
        errors.add(batch["duration"].to_numpy(), deployable.predict_rides(batch))
    return errors.rmse


def fit(spec: TrainingSpec, statistics: ZonePairStatistics, months: list[BatchSource], columns: list[str]):
    """The built-in model from the months' statistics (exact; its robust fit reads the rides once more, by
    batches); any other estimator on the months' rows. `columns`: the cleaned months' (the dataset's features)."""
    if spec.get("estimator", BUILTIN) == BUILTIN:
        features = [name for name in columns if name in FEATURE_COLUMNS]

        def rides():
            return (batch for month in months for batch in month(evaluation_columns(features)))

        return ZonePairDurationRegressor.from_statistics(
            statistics, rides, **spec.get("params", {}), uses_distance=DISTANCE in features
        )
    return train_model(months, holdout_fraction=0.0, config=dict(spec), columns=columns).model


@dataclass
class TrainedMonth:
    version: str
    action: str  # "registered", or "already registered" (the same training data found its version)
    metadata: dict[str, Any]
    findings: Findings


def train_month(
    spec: TrainingSpec,
    key: str,
    training_keys: list[str],
    training_statistics: list[pa.Table],
    training_rides: list[BatchSource],
    scored_month: BatchSource,
    columns: list[str],
    registry: RegistryClient,
) -> TrainedMonth:
    """Fit the model of month `key` on its training months (their stored statistics and rides), test it on the
    month it will score, and register it unless the same training data already has a version."""
    if not training_keys:
        raise StepFailure("no earlier month to train on: it is the first partition of the range")
    statistics = sum(
        (ZonePairStatistics.from_stored(table) for table in training_statistics), ZonePairStatistics.empty()
    )
    data_version = training_data_version(training_keys, training_statistics, spec)
    model = fit(spec, statistics, training_rides, columns)
    rides_bounded = getattr(model, "rides_bounded_", None)
    mean_duration = float(statistics.count @ statistics.mean_duration / max(statistics.rides, 1))
    test = test_on_month(model, scored_month, columns, mean_duration)
    test_rmse, mean_rmse = test.errors.rmse, test.baseline.rmse
    version = registry.find_version(key, data_version)
    if version is None:
        # Fitted from the months' statistics: no hold-out; what it is judged on is the month it will score.
        trained = TrainedModel(
            model=model,
            holdout=None,
            train_rows=statistics.rides,
            holdout_rows=0,
            holdout_rmse=float("nan"),
            train_rmse=float("nan"),
            rides_bounded=rides_bounded,
        )
        registered = registry.log_and_register(
            trained,
            partition_key=key,
            training_partitions=training_keys,
            params={"estimator": spec.get("estimator", BUILTIN), **spec.get("params", {}), "test_month": key},
            training_data_version=data_version,
            metrics={"test_rmse": test_rmse, "test_rows": test.errors.rows, "mean_baseline_rmse": mean_rmse},
        )
        version, run_id, action = registered.version, registered.run_id, "registered"
    else:
        run_id, action = registry.version_run_id(version), "already registered"

    findings = Findings()
    findings.measured("duration_model_quality", key, test_rmse=test_rmse, mean_baseline_rmse=mean_rmse)
    if not np.isfinite(test_rmse) or test_rmse >= mean_rmse:
        findings.failed(
            "duration_model_quality", key,
            f"RMSE {test_rmse:.3f} on {key} does not beat predicting the mean ({mean_rmse:.3f})",
        )
    pickup, dropoff = statistics.zone_counts()
    drift = {
        "psi_PULocationID": psi(pickup, test.pickup_zones),
        "psi_DOLocationID": psi(dropoff, test.dropoff_zones),
        # None (not a failure) when a training month was stored before its distance counts were recorded.
        "psi_trip_distance": (
            psi(statistics.distance_counts, test.distance_bins) if statistics.distance_counts is not None else None
        ),
    }
    present = {name: value for name, value in drift.items() if value is not None}
    findings.measured("duration_model_drift", key, **drift, drift_score=max(present.values()))
    shifted = {name: round(value, 3) for name, value in present.items() if value > SIGNIFICANT_PSI}
    if shifted:
        findings.failed("duration_model_drift", key, f"shift vs {training_keys[-1]}: {shifted}")
    metadata = {
        "model_version": version,
        "mlflow_run_id": run_id,
        "model_uri": f"models:/{registry.model_name}/{version}",
        "test_rmse": test_rmse,
        "mean_baseline_rmse": mean_rmse,
        "train_rows": statistics.rides,
        "rides_bounded": rides_bounded,
        "test_rows": test.errors.rows,
        "training_partitions": ",".join(training_keys),
        "training_data_version": data_version,
    }
    return TrainedMonth(version, action, metadata, findings)
