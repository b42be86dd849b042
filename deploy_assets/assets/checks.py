"""Asset checks: schema, volume, dirty-row share, prediction completeness, model quality and drift.

Blocking checks with ERROR severity stop the downstream assets of the run, so bad months are never scored or
published. Each check evaluates every month of its run (one month normally, a range in a backfill) and reports
per-month numbers in its metadata.
"""

import dagster as dg
import numpy as np
import pyarrow.compute as pc

from deploy_assets.assets.history import latest_metadata
from deploy_assets.assets.model import duration_model
from deploy_assets.assets.predictions import trip_predictions
from deploy_assets.assets.raw import raw_trips
from deploy_assets.core.drift import categorical_psi, numeric_psi
from deploy_assets.core.features import CLEAN_SCHEMA, MAX_ZONE_ID
from deploy_assets.partitions import monthly_partitions, partition_key_for, year_month
from deploy_assets.resources.quality import QualityThresholds
from deploy_assets.resources.storage import PredictionStore, StoredPartitions


def _months(context: dg.AssetCheckExecutionContext) -> list[str]:
    return list(context.op_execution_context.partition_keys)


def _result(
    problems: dict[str, str], per_month: dict[str, dict], severity=dg.AssetCheckSeverity.ERROR
) -> dg.AssetCheckResult:
    """One result for the run's months. A single month's numbers keep plain names, so the UI plots them across
    partitions; over a range (a backfill) each name is suffixed with its month."""
    if len(per_month) == 1:
        [metadata] = per_month.values()
    else:
        metadata = {f"{name} [{month}]": value for month, values in per_month.items() for name, value in values.items()}
    return dg.AssetCheckResult(
        passed=not problems,
        severity=severity,
        description="; ".join(f"{month}: {problem}" for month, problem in problems.items()) or None,
        metadata=metadata,
    )


def previous_month(partition_key: str) -> str:
    year, month = year_month(partition_key)
    return partition_key_for(year - 1, 12) if month == 1 else partition_key_for(year, month - 1)


@dg.asset_check(asset=raw_trips, blocking=True, partitions_def=monthly_partitions)
def raw_trips_schema(context: dg.AssetCheckExecutionContext, raw_trips: StoredPartitions) -> dg.AssetCheckResult:
    """The stored month has exactly the cleaned columns and types the model and scoring expect."""
    problems, per_month = {}, {}
    for month in _months(context):
        schema = raw_trips[month].schema
        per_month[month] = {"columns": len(schema)}
        if not schema.equals(CLEAN_SCHEMA):
            problems[month] = f"schema {schema} differs from {CLEAN_SCHEMA}"
    return _result(problems, per_month)


@dg.asset_check(asset=raw_trips, blocking=True, partitions_def=monthly_partitions)
def raw_trips_dirty_share(
    context: dg.AssetCheckExecutionContext, thresholds: QualityThresholds
) -> dg.AssetCheckResult:
    """The share of null, negative or absurd rows, plotted across months. raw_trips refuses to store a month over
    the limit; this blocking check also stops a stored month from being scored after the limit was lowered."""
    problems, per_month = {}, {}
    for month in _months(context):
        seen = latest_metadata(context.instance, raw_trips.key, month)
        share = seen["rows_dropped"] / max(seen["rows_read"], 1)
        per_month.setdefault(month, {})["dropped_share"] = share
        if share > thresholds.max_dropped_share:
            reasons = {k.removeprefix("dropped_"): v for k, v in seen.items() if k.startswith("dropped_") and v}
            problems[month] = f"{share:.0%} of rows dropped (limit {thresholds.max_dropped_share:.0%}): {reasons}"
    return _result(problems, per_month)


@dg.asset_check(asset=raw_trips, blocking=False, partitions_def=monthly_partitions)
def raw_trips_volume(context: dg.AssetCheckExecutionContext, thresholds: QualityThresholds) -> dg.AssetCheckResult:
    """Kept rows within ±tolerance of the previous month (a warning: volume can legitimately move)."""
    problems, per_month = {}, {}
    for month in _months(context):
        rows = latest_metadata(context.instance, raw_trips.key, month)["rows_kept"]
        previous = latest_metadata(context.instance, raw_trips.key, previous_month(month)).get("rows_kept")
        per_month.setdefault(month, {})["rows_kept"] = rows
        if previous:
            change = rows / previous - 1
            per_month.setdefault(month, {})["change_vs_previous"] = change
            if abs(change) > thresholds.volume_tolerance:
                problems[month] = f"{rows} rows kept vs {previous} the month before ({change:+.0%})"
    return _result(problems, per_month, severity=dg.AssetCheckSeverity.WARN)


@dg.asset_check(asset=duration_model, blocking=False, partitions_def=monthly_partitions)
def duration_model_quality(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """Hold-out RMSE is finite and no worse than the champion's by more than the margin; otherwise the version
    was registered but not made @champion (the asset's promotion gate), which this check surfaces."""
    problems, per_month = {}, {}
    for month in _months(context):
        seen = latest_metadata(context.instance, duration_model.key, month)
        per_month.setdefault(month, {})["holdout_rmse"] = seen["holdout_rmse"]
        if not np.isfinite(seen["holdout_rmse"]):
            problems[month] = "hold-out RMSE is not finite"
        elif not seen["promoted_to_champion"]:
            problems[month] = (
                f"version {seen['model_version']} not promoted: hold-out RMSE {seen['holdout_rmse']:.3f} vs"
                f" champion {seen['champion_rmse_on_holdout']:.3f} on the same rides"
            )
    return _result(problems, per_month, severity=dg.AssetCheckSeverity.WARN)


@dg.asset_check(
    asset=trip_predictions,
    blocking=True,
    partitions_def=monthly_partitions,
    additional_ins={"raw_trips": dg.AssetIn(raw_trips.key)},
)
def trip_predictions_complete(
    context: dg.AssetCheckExecutionContext,
    raw_trips: StoredPartitions,
    predictions: PredictionStore,
    thresholds: QualityThresholds,
) -> dg.AssetCheckResult:
    """One prediction per kept ride, no missing values, every prediction within a sane range."""
    problems, per_month = {}, {}
    for month in _months(context):
        scored = predictions.read_month(*year_month(month))
        expected = raw_trips[month].num_rows
        predicted = scored["predicted_duration"]
        out_of_range = pc.sum(
            pc.or_(pc.less(predicted, 0), pc.greater(predicted, thresholds.max_predicted_minutes))
        ).as_py() or 0
        nulls = sum(column.null_count for column in scored.columns)
        nans = int(pc.sum(pc.is_nan(predicted)).as_py() or 0)
        unique_ids = pc.count_distinct(scored["ride_id"]).as_py()
        per_month.setdefault(month, {})["rows"] = scored.num_rows
        issues = []
        if scored.num_rows != expected:
            issues.append(f"{scored.num_rows} predictions for {expected} kept rides")
        if unique_ids != scored.num_rows:
            issues.append(f"{scored.num_rows - unique_ids} duplicated ride_id")
        if nulls or nans:
            issues.append(f"{nulls} nulls and {nans} NaN")
        if out_of_range:
            issues.append(f"{out_of_range} predictions outside 0–{thresholds.max_predicted_minutes:g} min")
        if issues:
            problems[month] = ", ".join(issues)
    return _result(problems, per_month)


@dg.asset_check(
    asset=trip_predictions,
    blocking=False,
    partitions_def=monthly_partitions,
    additional_ins={
        "months": dg.AssetIn(raw_trips.key, partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1))
    },
)
def trip_predictions_drift(
    context: dg.AssetCheckExecutionContext,
    months: StoredPartitions,
    predictions: PredictionStore,
    thresholds: QualityThresholds,
) -> dg.AssetCheckResult:
    """Shift of features (zones, distance) and of predictions vs the previous month, as PSI (a warning)."""
    problems, per_month = {}, {}
    for month in _months(context):
        before = previous_month(month)
        if before not in months or not predictions.month_path(*year_month(before)).exists():
            per_month.setdefault(month, {})["note"] = "no previous month to compare with"
            continue
        current, reference = months[month], months[before]
        scores = {
            "PULocationID": categorical_psi(
                reference["PULocationID"].to_numpy(), current["PULocationID"].to_numpy(), MAX_ZONE_ID + 1
            ),
            "DOLocationID": categorical_psi(
                reference["DOLocationID"].to_numpy(), current["DOLocationID"].to_numpy(), MAX_ZONE_ID + 1
            ),
            "trip_distance": numeric_psi(reference["trip_distance"].to_numpy(), current["trip_distance"].to_numpy()),
            "predicted_duration": numeric_psi(
                predictions.read_month(*year_month(before), columns=["predicted_duration"])[0].to_numpy(),
                predictions.read_month(*year_month(month), columns=["predicted_duration"])[0].to_numpy(),
            ),
        }
        per_month.setdefault(month, {}).update({f"psi_{name}": value for name, value in scores.items()})
        per_month.setdefault(month, {})["drift_score"] = max(scores.values())
        shifted = {name: round(value, 3) for name, value in scores.items() if value > thresholds.drift_psi_warning}
        if shifted:
            problems[month] = f"distribution shift vs {before} (PSI > {thresholds.drift_psi_warning}): {shifted}"
    return _result(problems, per_month, severity=dg.AssetCheckSeverity.WARN)
