"""trip_predictions and prediction_table: a month scored, audited, then published as one Parquet object and SQL rows.

Write-audit-publish: each month's predictions are written to a staging object, the blocking checks run on them
while they are in hand, and only then is the object moved onto the published key; the table is loaded from the
published object afterwards. A failed check or run leaves the published object and the table rows as they were.
"""


from contextlib import ExitStack
from dataclasses import replace

import dagster as dg
import numpy as np
import pyarrow as pa
from pydantic import Field

from deploy_assets.assets.checks import (
    PredictionAudit,
    blocking_failure,
    check_specs,
    month_check_evaluations,
    rounded,
)
from deploy_assets.assets.errors import failures_named, partition_failure
from deploy_assets.assets.monthly import Deployment
from deploy_assets.assets.versions import month_data_version
from deploy_assets.automation import converge
from deploy_assets.core.challenger import Comparison, ComparisonTotals
from deploy_assets.core.contract import CLIP, OutputPolicy, as_deployable
from deploy_assets.core.scoring import PREDICTION_SCHEMA, score_trips
from deploy_assets.core.registry import RegistryClient
from deploy_assets.partitions import month_start, year_month
from deploy_assets.resources.mlflow_registry import ModelRegistry
from deploy_assets.resources.quality import QualityThresholds
from deploy_assets.resources.io_manager import StoredPartitions
from deploy_assets.resources.predictions_store import PredictionStore
from deploy_assets.resources.warehouse import PredictionWarehouse
from deploy_assets.settings import CHAMPION_POLICY, PARTITION_POLICY

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


def scoring_config(policy: str) -> type[dg.Config]:
    """trip_predictions' run config, defaulting to the deployment's scoring policy."""

    class ScoringConfig(dg.Config):
        model: str = Field(
            policy,
            description=(
                "which registered model scores the month: 'partition' = duration_model of the same month (never"
                " trained on it), 'champion' = the registry's @champion, or an explicit version number"
            ),
        )

    return ScoringConfig


def resolve_model_version(registry: RegistryClient, policy: str, asset: str, partition_key: str) -> str:
    if policy == PARTITION_POLICY:
        version = registry.version_for_partition(partition_key)
        if version is None:
            raise partition_failure(
                asset, partition_key, "no registered model for this month: materialize duration_model first"
            )
        return version
    if policy == CHAMPION_POLICY:
        version = registry.champion_version()
        if version is None:
            raise partition_failure(
                asset, partition_key, f"{registry.model_name} has no @{registry.champion_alias} version"
            )
        return version
    if policy.isdigit():
        return policy
    raise partition_failure(asset, partition_key, f"unknown model policy {policy!r}")


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


def score_and_stage_month(
    context: dg.AssetExecutionContext,
    raw_trips: StoredPartitions,
    registry: RegistryClient,
    predictions: PredictionStore,
    shadow_predictions: PredictionStore,
    thresholds: QualityThresholds,
    columns: list[str],
    key: str,
    version: str,
    problems: dict,
    numbers: dict,
) -> str:
    """Score the month (its `columns`: the deployment's cleaned schema) by record batches into its staging object
    (memory: one batch), auditing as it goes; returns the staged object's fingerprint (its content version). The
    version is validated against the deployment's rides first."""
    year, month = year_month(key)
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
        for clean in raw_trips.batches(key)(columns):
            scored = score_trips(clean, model, version, policy)
            writer.write(scored)
            audit.add(scored, clean.num_rows)
            kept += clean.num_rows
            if shadow_writer is not None:
                shadow.add(clean, scored, shadow_writer)
    numbers.setdefault("trip_predictions_complete", {})[key] = {"rows": audit.rows}
    problem = audit.problem(kept)
    if problem:
        problems.setdefault("trip_predictions_complete", {})[key] = problem
    if shadow.enabled:
        comparison = shadow.comparison()
        uri = str(shadow_predictions.month_path(year, month))
        numbers.setdefault("challenger_comparison", {})[key] = {**comparison.metadata(), "shadow_uri": uri}
        if comparison.challenger_rmse > comparison.champion_rmse:
            problems.setdefault("challenger_comparison", {})[key] = (
                f"challenger {comparison.challenger_version} RMSE {comparison.challenger_rmse:.3f} vs champion"
                f" {comparison.champion_version} {comparison.champion_rmse:.3f} on the same {comparison.rides} rides"
            )
    else:
        numbers.setdefault("challenger_comparison", {})[key] = {
            "skipped": "nothing to compare: the registry has no @challenger (or no @champion)"
        }
    context.add_asset_metadata(
        rounded({
            "dagster/row_count": audit.rows,
            "model_version": version,
            "output_policy": f"{policy.action} to {policy.range}",
            **audit.summary(),
        }),
        partition_key=key,
    )
    return writer.digest()


def build_prediction_assets(deployment: Deployment) -> list[dg.AssetsDefinition]:
    """The deployment's trip_predictions and prediction_table. The model that scores month M is an input of
    trip_predictions[M]: its own model (policy `partition`), or the observed @champion (policy `champion`)."""
    scoring_policy = deployment.settings.scoring_policy
    scoring_model = deployment.key("duration_model" if scoring_policy == PARTITION_POLICY else "champion_model")
    ScoringConfig = scoring_config(scoring_policy)
    asset, table_asset = deployment.label("trip_predictions"), deployment.label("prediction_table")
    predictions, shadow_predictions = deployment.predictions, deployment.shadow_predictions

    @dg.asset(
        **deployment.monthly(),
        deps=[scoring_model],
        check_specs=check_specs(deployment.key("trip_predictions"), PREDICTION_CHECKS, deployment.months.partitions_def),
        automation_condition=converge(),
        kinds={"parquet"},
        code_version="3",
    )
    def trip_predictions(
        context: dg.AssetExecutionContext,
        config: ScoringConfig,
        raw_trips: StoredPartitions,
        registry: ModelRegistry,
        thresholds: QualityThresholds,
    ):
        """Every kept ride of month M with its predicted duration, in `.../year=YYYY/month=MM/predictions.parquet`,
        each row stamped with the model version that scored it, audited before it is published. Scored by
        duration_model[M] (scoring policy `partition`: the first month, which has no model, is not scored) or by the
        registry's @champion (policy `champion`: every month, the first included)."""
        model = deployment.model(registry)
        versions, staged, problems, numbers, digests = {}, set(), {}, {}, {}
        for key in context.partition_keys:
            with failures_named(asset, key):
                versions[key] = resolve_model_version(model, config.model, asset, key)
        try:
            for key, version in versions.items():
                with failures_named(asset, key):
                    staged.add(key)
                    digests[key] = score_and_stage_month(
                        context, raw_trips, model, predictions, shadow_predictions, deployment.limits(thresholds),
                        deployment.clean_schema.names, key, version,
                        problems, numbers,
                    )
            failed = blocking_failure(PREDICTION_CHECKS, problems)
            if failed:
                yield from month_check_evaluations(context, context.asset_key, PREDICTION_CHECKS, problems, numbers)
                check, month, problem = failed
                raise partition_failure(asset, month, f"check {check} failed, nothing published: {problem}")
            for key in versions:
                with failures_named(asset, key):
                    uri = predictions.publish(*year_month(key))
                    staged.discard(key)
                context.log.info(f"{asset}[{key}]: scored by model version {versions[key]}, published {uri}")
                context.add_asset_metadata({"dagster/uri": uri}, partition_key=key)
        finally:
            for key in staged:
                predictions.discard_staging(*year_month(key))
        # The published object's bytes: the same predictions re-published change nothing downstream.
        yield dg.MaterializeResult(data_version=month_data_version(context, digests))
        yield from month_check_evaluations(context, context.asset_key, PREDICTION_CHECKS, problems, numbers)

    @dg.asset(
        **deployment.monthly(),
        deps=[trip_predictions],
        automation_condition=converge(),
        # An embedded DuckDB file takes one writer at a time: the deployment's runs queue for its pool (limit in
        # dagster.yaml); another deployment's table load never waits for this one's.
        pool=deployment.named("predictions_db"),
        kinds={"duckdb"},
        code_version="2",
    )
    def prediction_table(context: dg.AssetExecutionContext, warehouse: PredictionWarehouse) -> None:
        """The month's published predictions in the deployment's SQL table, replaced in one transaction."""
        table = deployment.table(warehouse)
        for key in context.partition_keys:
            with failures_named(table_asset, key):
                rows = table.replace_month_from_parquet(month_start(key), predictions.month_path(*year_month(key)))
            context.add_asset_metadata(
                {"dagster/row_count": rows, "dagster/table_name": table.table, "database": table.display_url},
                partition_key=key,
            )

    return [trip_predictions, prediction_table]
