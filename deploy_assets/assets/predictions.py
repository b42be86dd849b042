"""trip_predictions and prediction_table: a month scored, audited, then published as one Parquet object and SQL rows.

Write-audit-publish: each month's predictions are written to a staging object, the blocking checks run on them
while they are in hand, and only then is the object moved onto the published key; the table is loaded from the
published object afterwards. A failed check or run leaves the published object and the table rows as they were.
"""


import dagster as dg
from pydantic import Field

from deploy_assets.assets.checks import check_specs, month_check_evaluations, rounded
from deploy_assets.assets.errors import failures_named, partition_failure
from deploy_assets.assets.monthly import Deployment
from deploy_assets.assets.versions import month_data_version
from deploy_assets.automation import converge
from deploy_assets.resources.io_manager import StoredPartitions
from deploy_assets.resources.mlflow_registry import ModelRegistry
from deploy_assets.resources.quality import QualityThresholds
from deploy_assets.resources.warehouse import PredictionWarehouse
from deploy_assets.settings import PARTITION_POLICY
from deploy_assets.steps.findings import Findings
from deploy_assets.steps.publish import discard_staged, load_into_table, publish_month
from deploy_assets.steps.score import PREDICTION_CHECKS, resolve_model_version, score_to_staging


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
        versions, staged, findings, digests = {}, set(), Findings(), {}
        for key in context.partition_keys:
            with failures_named(asset, key):
                versions[key] = resolve_model_version(model, config.model, key)
        try:
            for key, version in versions.items():
                with failures_named(asset, key):
                    staged.add(key)
                    month = score_to_staging(
                        raw_trips.batches(key), model, predictions, shadow_predictions, deployment.limits(thresholds),
                        deployment.clean_schema.names, key, version,
                    )
                context.add_asset_metadata(rounded(month.metadata), partition_key=key)
                findings.update(month.findings)
                digests[key] = month.digest
            failed = findings.blocking_failure(PREDICTION_CHECKS)
            if failed:
                yield from month_check_evaluations(context, context.asset_key, PREDICTION_CHECKS, findings)
                check, month, problem = failed
                raise partition_failure(asset, month, f"check {check} failed, nothing published: {problem}")
            for key in versions:
                with failures_named(asset, key):
                    uri = publish_month(predictions, key)
                    staged.discard(key)
                context.log.info(f"{asset}[{key}]: scored by model version {versions[key]}, published {uri}")
                context.add_asset_metadata({"dagster/uri": uri}, partition_key=key)
        finally:
            for key in staged:
                discard_staged(predictions, key)
        # The published object's bytes: the same predictions re-published change nothing downstream.
        yield dg.MaterializeResult(data_version=month_data_version(context, digests))
        yield from month_check_evaluations(context, context.asset_key, PREDICTION_CHECKS, findings)

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
                loaded = load_into_table(table, predictions, key)
            context.add_asset_metadata(loaded, partition_key=key)

    return [trip_predictions, prediction_table]
