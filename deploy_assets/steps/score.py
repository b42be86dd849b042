"""The scoring step: a month's rides scored by record batches into the staging object of its predictions, audited
as they are written, with @challenger scored beside them into the shadow store. Nothing here is published."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deploy_assets.core.batches import BatchSource
from deploy_assets.core.challenger import Comparison, ComparisonTotals
from deploy_assets.core.contract import CLIP, OutputPolicy, as_deployable
from deploy_assets.core.months import Month
from deploy_assets.core.registry import RegistryClient
from deploy_assets.core.scoring import PREDICTION_SCHEMA, score_trips
from deploy_assets.settings import CHAMPION_POLICY, PARTITION_POLICY
from deploy_assets.steps.findings import Findings, StepFailure

if TYPE_CHECKING:  # the resources are Dagster's; a step only calls their plain methods
    from deploy_assets.resources.predictions_store import PredictionStore
    from deploy_assets.resources.quality import QualityThresholds

PREDICTION_CHECKS = {
    "trip_predictions_complete": (
        True,
        "one finite prediction in the declared range per kept ride (but those the output policy drops), unique ride"
        " ids, and no more predictions adjusted by the output policy than the threshold's share",
    ),
    "challenger_comparison": (
        False,
        "@champion vs @challenger on the same rides (RMSE of each, share differing by more than 5 min); a warning"
        " when the challenger is worse. The challenger's predictions go to the shadow store, never published",
    ),
}


def resolve_model_version(registry: RegistryClient, policy: str, key: str) -> str:
    """The version that scores month `key` under `policy`: the month's own model (`partition`), the registry's
    @champion (`champion`) or an explicit version number."""
    if policy == PARTITION_POLICY:
        version = registry.version_for_partition(key)
        if version is None:
            raise StepFailure("no registered model for this month: materialize duration_model first")
        return version
    if policy == CHAMPION_POLICY:
        version = registry.champion_version()
        if version is None:
            raise StepFailure(f"{registry.model_name} has no @{registry.champion_alias} version")
        return version
    if policy.isdigit():
        return policy
    raise StepFailure(f"unknown model policy {policy!r}")


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


class ShadowScoring:
    """@challenger scored beside the published model, batch by batch: its predictions go to the shadow store
    (never published), and the comparison with @champion on the same rides is accumulated for the check. They
    are clipped to the declared range (never dropped, never failing the month): the shadow changes nothing."""

    def __init__(self, registry: RegistryClient, published_version: str, published_model, policy: OutputPolicy):
        self.policy = replace(policy, action=CLIP)
        self.champion, self.challenger = registry.champion_version(), registry.challenger_version()
        self.enabled = self.champion is not None and self.challenger is not None
        if not self.enabled:
            return
        # When the published model is the champion, its predictions are reused rather than computed twice.
        self.reuse = published_version == self.champion
        self.champion_model = published_model if self.reuse else as_deployable(
            registry.load(self.champion), self.champion
        )
        self.challenger_model = as_deployable(registry.load(self.challenger), self.challenger)
        self.totals = ComparisonTotals(self.champion, self.challenger)

    def add(self, clean: pa.RecordBatch, published: pa.Table, writer) -> None:
        if self.reuse and published.num_rows == clean.num_rows:
            champion = np.asarray(published["predicted_duration"], dtype=np.float64)
        else:  # another model, or rides the output policy dropped from what was published
            champion = self.policy.apply(self.champion_model.predict_rides(clean))[0]
        shadow = score_trips(clean, self.challenger_model, self.challenger, self.policy)
        writer.write(shadow)
        self.totals.add(champion, shadow["predicted_duration"], clean["duration"].to_numpy())

    def comparison(self) -> Comparison:
        return self.totals.result()


@dataclass
class StagedMonth:
    digest: str  # the staged object's fingerprint: its content version once published
    metadata: dict[str, Any]
    findings: Findings


def score_to_staging(
    rides: BatchSource,
    registry: RegistryClient,
    predictions: PredictionStore,
    shadow_predictions: PredictionStore,
    thresholds: QualityThresholds,
    columns: list[str],
    key: str,
    version: str,
) -> StagedMonth:
    """Score the month's `rides` (its `columns`: the deployment's cleaned schema) with model `version` by record
    batches into its staging object (memory: one batch), auditing as it goes. The version is validated against
    the deployment's rides first."""
    year, month = Month.from_key(key).pair
    model = registry.load_deployable(version)
    policy = thresholds.output_policy()
    audit, kept = PredictionAudit(policy, thresholds.max_adjusted_share), 0
    shadow = ShadowScoring(registry, version, model, policy)
    with ExitStack() as stack:
        writer = stack.enter_context(predictions.month_writer(year, month, PREDICTION_SCHEMA, staging=True))
        shadow_writer = (
            stack.enter_context(shadow_predictions.month_writer(year, month, PREDICTION_SCHEMA))
            if shadow.enabled
            else None
        )
        for clean in rides(columns):
            scored = score_trips(clean, model, version, policy)
            writer.write(scored)
            audit.add(scored, clean.num_rows)
            kept += clean.num_rows
            if shadow_writer is not None:
                shadow.add(clean, scored, shadow_writer)
    findings = Findings()
    findings.measured("trip_predictions_complete", key, rows=audit.rows)
    problem = audit.problem(kept)
    if problem:
        findings.failed("trip_predictions_complete", key, problem)
    if shadow.enabled:
        comparison = shadow.comparison()
        uri = str(shadow_predictions.month_path(year, month))
        findings.measured("challenger_comparison", key, **comparison.metadata(), shadow_uri=uri)
        if comparison.challenger_rmse > comparison.champion_rmse:
            findings.failed(
                "challenger_comparison", key,
                f"challenger {comparison.challenger_version} RMSE {comparison.challenger_rmse:.3f} vs champion"
                f" {comparison.champion_version} {comparison.champion_rmse:.3f} on the same {comparison.rides} rides",
            )
    else:
        findings.measured(
            "challenger_comparison", key, skipped="nothing to compare: the registry has no @challenger (or no @champion)"
        )
    metadata = {
        "dagster/row_count": audit.rows,
        "model_version": version,
        "output_policy": f"{policy.action} to {policy.range}",
        **audit.summary(),
    }
    return StagedMonth(writer.digest(), metadata, findings)
