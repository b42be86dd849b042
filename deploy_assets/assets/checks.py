"""Asset checks, computed inside the step that has the data in hand (nothing is read back to check it).

Each step declares its checks as `check_specs` and reports one result per check for the months of its run. A
failed blocking check (ERROR) stops the step before it stores or publishes anything, so what users read stays as
it was; a warning (WARN) is reported and the step goes on. One month's numbers keep plain metadata names, so the
UI plots them across partitions; a ranged run (a backfill) suffixes each name with its month, and the same
numbers are also recorded per partition on the asset's materialization.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deploy_assets.core.drift import categorical_psi, numeric_psi
from deploy_assets.core.features import CLEAN_SCHEMA, MAX_ZONE_ID
from deploy_assets.resources.quality import QualityThresholds

# check name → (blocking, description)
CheckSpecs = Mapping[str, tuple[bool, str]]


def check_specs(asset: str, checks: CheckSpecs) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(name, asset=asset, blocking=blocking, description=description)
        for name, (blocking, description) in checks.items()
    ]


def month_check_results(
    asset: str, checks: CheckSpecs, problems: dict[str, dict[str, str]], numbers: dict[str, dict[str, dict]]
) -> list[dg.AssetCheckResult]:
    """One result per check over the run's months: `problems[check][month]` says what failed, `numbers[check][month]`
    the plotted values."""
    results = []
    for name, (blocking, _) in checks.items():
        per_month = numbers.get(name, {})
        if len(per_month) == 1:
            [metadata] = per_month.values()
        else:
            metadata = {f"{k} [{month}]": v for month, values in per_month.items() for k, v in values.items()}
        failed = problems.get(name, {})
        results.append(
            dg.AssetCheckResult(
                asset_key=asset,
                check_name=name,
                passed=not failed,
                severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN,
                description="; ".join(f"{month}: {problem}" for month, problem in failed.items()) or None,
                metadata=metadata,
            )
        )
    return results


def blocking_failure(checks: CheckSpecs, problems: dict[str, dict[str, str]]) -> tuple[str, str, str] | None:
    """(check, month, problem) of the first failed blocking check, or None."""
    for name, (blocking, _) in checks.items():
        if blocking and problems.get(name):
            month, problem = next(iter(problems[name].items()))
            return name, month, problem
    return None


# --- raw_trips -----------------------------------------------------------------------------------------------------


def raw_month_problems(
    month: str, seen: dict, thresholds: QualityThresholds, problems: dict, numbers: dict
) -> None:
    """Schema, dirty share and volume of one ingested month, from the numbers the ingest step counted."""
    numbers.setdefault("raw_trips_schema", {})[month] = {"columns": len(seen["schema"])}
    if not seen["schema"].equals(CLEAN_SCHEMA):
        problems.setdefault("raw_trips_schema", {})[month] = f"schema {seen['schema']} differs from {CLEAN_SCHEMA}"

    share = seen["dropped_share"]
    numbers.setdefault("raw_trips_dirty_share", {})[month] = {"dropped_share": share}
    if share > thresholds.max_dropped_share:
        problems.setdefault("raw_trips_dirty_share", {})[month] = (
            f"{share:.0%} of rows dropped (limit {thresholds.max_dropped_share:.0%}): {seen['dropped']}"
        )

    rows, previous = seen["rows_kept"], seen["previous_rows_kept"]
    numbers.setdefault("raw_trips_volume", {})[month] = {"rows_kept": rows}
    if previous:
        change = rows / previous - 1
        numbers["raw_trips_volume"][month]["change_vs_previous"] = change
        if abs(change) > thresholds.volume_tolerance:
            problems.setdefault("raw_trips_volume", {})[month] = (
                f"{rows} rows kept vs {previous} the month before ({change:+.0%})"
            )


# --- duration_model ------------------------------------------------------------------------------------------------


def feature_drift(training: pa.Table, scored: pa.Table) -> dict[str, float]:
    """PSI of the features between what a model learned on and the month it scores."""
    zones = MAX_ZONE_ID + 1
    return {
        "psi_PULocationID": categorical_psi(
            training["PULocationID"].to_numpy(), scored["PULocationID"].to_numpy(), zones
        ),
        "psi_DOLocationID": categorical_psi(
            training["DOLocationID"].to_numpy(), scored["DOLocationID"].to_numpy(), zones
        ),
        "psi_trip_distance": numeric_psi(training["trip_distance"].to_numpy(), scored["trip_distance"].to_numpy()),
    }


# --- trip_predictions ----------------------------------------------------------------------------------------------


def predictions_problem(scored: pa.Table, expected_rows: int, thresholds: QualityThresholds) -> str | None:
    """One prediction per kept ride, no missing values, every prediction within a sane range."""
    predicted = scored["predicted_duration"]
    out_of_range = pc.sum(
        pc.or_(pc.less(predicted, 0), pc.greater(predicted, thresholds.max_predicted_minutes))
    ).as_py() or 0
    nulls = sum(column.null_count for column in scored.columns)
    nans = int(pc.sum(pc.is_nan(predicted)).as_py() or 0)
    unique_ids = pc.count_distinct(scored["ride_id"]).as_py()
    issues = []
    if scored.num_rows != expected_rows:
        issues.append(f"{scored.num_rows} predictions for {expected_rows} kept rides")
    if unique_ids != scored.num_rows:
        issues.append(f"{scored.num_rows - unique_ids} duplicated ride_id")
    if nulls or nans:
        issues.append(f"{nulls} nulls and {nans} NaN")
    if out_of_range:
        issues.append(f"{out_of_range} predictions outside 0–{thresholds.max_predicted_minutes:g} min")
    return ", ".join(issues) or None


def finite(value: float) -> bool:
    return bool(np.isfinite(value))
