"""Asset checks, computed inside the step that has the data in hand (nothing is read back to check it).

Each step declares its checks as `check_specs` and reports one evaluation per check and month of its run: the
checks are partitioned like their assets, and each evaluation names the month's materialization it is about, so
the UI shows each month's status (the checks' Partitions view) and plots the numbers across partitions however
the months were run. A failed blocking check (ERROR) stops
the step before it stores or publishes anything, so what users read stays as it was; a warning (WARN) is reported
and the step goes on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deploy_assets.assets.history import check_target
from deploy_assets.core.contract import OutputPolicy
from deploy_assets.core.ingest import IngestedMonth
from deploy_assets.resources.quality import QualityThresholds

# check name → (blocking, description)
CheckSpecs = Mapping[str, tuple[bool, str]]


def check_specs(asset: dg.AssetKey, checks: CheckSpecs, partitions_def: dg.PartitionsDefinition) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(name, asset=asset, blocking=blocking, description=description, partitions_def=partitions_def)
        for name, (blocking, description) in checks.items()
    ]


def month_check_evaluations(
    context: dg.AssetExecutionContext,
    asset: dg.AssetKey,
    checks: CheckSpecs,
    problems: dict[str, dict[str, str]],
    numbers: dict[str, dict[str, dict]],
) -> Iterator[dg.Output | dg.AssetCheckEvaluation]:
    """One evaluation per selected check and month it reached: `problems[check][month]` says what failed,
    `numbers[check][month]` the plotted values (`{"skipped": why}`: nothing to evaluate, the check is skipped).

    `AssetCheckResult` would record a ranged run's result on no month, so the evaluations carry their partition
    and the materialization they are about; the check's own output is emitted here, as Dagster does for an
    `AssetCheckResult`. Iterate it only after yielding the materializations it checks (it looks them up)."""
    for key in sorted(context.selected_asset_check_keys, key=lambda key: key.name):
        if key.asset_key != asset:
            continue
        blocking, _ = checks[key.name]
        per_month, failed = numbers.get(key.name, {}), problems.get(key.name, {})
        yield dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(key))
        for month in sorted(per_month.keys() | failed.keys()):
            if "skipped" in per_month.get(month, {}) and month not in failed:
                context.log.info(f"{key.name}[{month}] skipped: {per_month[month]['skipped']}")
                continue
            yield dg.AssetCheckEvaluation(
                asset_key=key.asset_key,
                check_name=key.name,
                passed=month not in failed,
                severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN,
                description=failed.get(month),
                metadata=rounded(per_month.get(month, {})),
                blocking=blocking,
                partition=month,
                target_materialization_data=check_target(context.instance, key.asset_key, month),
            )


def rounded(metadata: Mapping[str, object], digits: int = 6) -> dict[str, object]:
    """Floats as the UI should print them: six significant digits, not seventeen."""
    return {
        name: float(f"{value:.{digits}g}") if isinstance(value, float) else value for name, value in metadata.items()
    }


def blocking_failure(checks: CheckSpecs, problems: dict[str, dict[str, str]]) -> tuple[str, str, str] | None:
    """(check, month, problem) of the first failed blocking check, or None."""
    for name, (blocking, _) in checks.items():
        if blocking and problems.get(name):
            month, problem = next(iter(problems[name].items()))
            return name, month, problem
    return None


# --- raw_trips -----------------------------------------------------------------------------------------------------


def raw_month_problems(
    month: str,
    ingested: IngestedMonth,
    expected: pa.Schema,
    previous: int | None,
    thresholds: QualityThresholds,
    problems: dict,
    numbers: dict,
) -> None:
    """Schema, dirty share and volume of one ingested month, from the numbers the ingest step counted;
    `expected` is the deployment's cleaned-month schema, `previous` the month before's kept rows."""
    numbers.setdefault("raw_trips_schema", {})[month] = {"columns": len(ingested.schema)}
    if not ingested.schema.equals(expected):
        problems.setdefault("raw_trips_schema", {})[month] = f"schema {ingested.schema} differs from {expected}"

    share = ingested.dropped_share
    numbers.setdefault("raw_trips_dirty_share", {})[month] = {"dropped_share": share}
    if share > thresholds.max_dropped_share:
        dropped = {reason: count for reason, count in ingested.dropped.items() if count}
        problems.setdefault("raw_trips_dirty_share", {})[month] = (
            f"{share:.0%} of rows dropped (limit {thresholds.max_dropped_share:.0%}): {dropped}"
        )

    rows = ingested.rows_kept
    numbers.setdefault("raw_trips_volume", {})[month] = {"rows_kept": rows}
    if previous:
        change = rows / previous - 1
        numbers["raw_trips_volume"][month]["change_vs_previous"] = change
        if abs(change) > thresholds.volume_tolerance:
            problems.setdefault("raw_trips_volume", {})[month] = (
                f"{rows} rows kept vs {previous} the month before ({change:+.0%})"
            )


# --- trip_predictions ----------------------------------------------------------------------------------------------


class PredictionAudit:
    """The completeness check, counted batch by batch while the predictions are written to staging.

    Ride ids are `YYYY/MM_<row index>`, in file order: strictly increasing indexes prove them unique without
    holding a month of ids. Counts what the output policy adjusted (clipped: `prediction_adjusted`; dropped: rides
    without a row), and accumulates the numbers the UI plots (mean, std, RMSE, mean |diff|).
    """

    def __init__(self, policy: OutputPolicy, max_adjusted_share: float) -> None:
        self.policy, self.max_adjusted_share = policy, max_adjusted_share
        self.rows = self.nulls = self.nans = self.out_of_range = self.unordered_ids = 0
        self.clipped = self.dropped = 0
        self.last_index = -1
        self.sum = self.sum_squares = self.squared_error = self.abs_diff = 0.0

    def add(self, batch: pa.Table | pa.RecordBatch, rides: int) -> None:
        """`batch`: the predictions of `rides` cleaned rides (fewer rows when the policy dropped some)."""
        predicted = np.asarray(batch["predicted_duration"], dtype=np.float64)
        self.rows += batch.num_rows
        self.dropped += rides - batch.num_rows
        self.clipped += int(pc.sum(batch["prediction_adjusted"]).as_py() or 0)
        self.nulls += sum(column.null_count for column in batch.columns)
        self.nans += int(np.isnan(predicted).sum())
        self.out_of_range += int(((predicted < self.policy.min_minutes) | (predicted > self.policy.max_minutes)).sum())
        index = np.asarray(pc.cast(pc.utf8_slice_codeunits(batch["ride_id"], 8), pa.int64()))
        if len(index):
            self.unordered_ids += int((np.diff(index) <= 0).sum()) + int(index[0] <= self.last_index)
            self.last_index = int(index[-1])
        diff = np.asarray(batch["diff"], dtype=np.float64)
        self.sum += float(np.nansum(predicted))
        self.sum_squares += float(np.nansum(predicted * predicted))
        self.squared_error += float(np.nansum(diff * diff))
        self.abs_diff += float(np.nansum(np.abs(diff)))

    @property
    def adjusted(self) -> int:
        return self.clipped + self.dropped

    @property
    def adjusted_share(self) -> float:
        rides = self.rows + self.dropped
        return self.adjusted / rides if rides else 0.0

    def problem(self, kept_rides: int) -> str | None:
        """One prediction per kept ride the policy did not drop, unique ride ids, no missing values, every
        prediction in the declared range, and no more adjusted by the policy than the threshold allows."""
        issues = []
        if self.rows != kept_rides - self.dropped:
            issues.append(f"{self.rows} predictions for {kept_rides} kept rides ({self.dropped} dropped by policy)")
        if self.unordered_ids:
            issues.append(f"{self.unordered_ids} ride_id out of order or duplicated")
        if self.nulls or self.nans:
            issues.append(f"{self.nulls} nulls and {self.nans} NaN")
        if self.out_of_range:
            issues.append(f"{self.out_of_range} predictions outside {self.policy.range}")
        if self.adjusted_share > self.max_adjusted_share:
            issues.append(
                f"{self.adjusted_share:.1%} of predictions outside {self.policy.range} ({self.adjusted} rides,"
                f" output policy {self.policy.action!r}; limit {self.max_adjusted_share:.1%})"
            )
        return ", ".join(issues) or None

    def summary(self) -> dict[str, float]:
        """What the UI plots across partitions."""
        adjusted = {"predictions_adjusted": self.adjusted, "adjusted_share": self.adjusted_share}
        if not self.rows:
            return adjusted
        mean = self.sum / self.rows
        return {
            **adjusted,
            "mean_predicted_duration": mean,
            "std_predicted_duration": float(np.sqrt(max(self.sum_squares / self.rows - mean * mean, 0.0))),
            "rmse": float(np.sqrt(self.squared_error / self.rows)),
            "mean_abs_diff": self.abs_diff / self.rows,
        }


def finite(value: float) -> bool:
    return bool(np.isfinite(value))
