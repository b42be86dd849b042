"""trip_predictions and prediction_table: a month scored, audited, then published as one Parquet object and SQL rows.

Write-audit-publish: each month's predictions are written to a staging object, the blocking checks run on them
while they are in hand, and only then is the object moved onto the published key; the table is loaded from the
published object afterwards. A failed check or run leaves the published object and the table rows as they were.
"""


import dagster as dg
from pydantic import Field

from deploy_assets.assets.checks import blocking_failure, check_specs, month_check_results, predictions_problem
from deploy_assets.assets.champion import champion_model
from deploy_assets.assets.errors import RETRY_POLICY, failures_named, partition_failure
from deploy_assets.assets.model import duration_model
from deploy_assets.automation import converge
from deploy_assets.core.challenger import compare_models
from deploy_assets.core.scoring import prediction_summary, score_trips
from deploy_assets.partitions import month_start, monthly_partitions, year_month
from deploy_assets.resources.mlflow_registry import ModelRegistry
from deploy_assets.resources.quality import QualityThresholds
from deploy_assets.resources.storage import PredictionStore, StoredPartitions
from deploy_assets.resources.warehouse import PredictionWarehouse
from deploy_assets.settings import CHAMPION_POLICY, PARTITION_POLICY, SCORING_POLICY

PREDICTION_CHECKS = {
    "trip_predictions_complete": (True, "one finite prediction in range per kept ride, unique ride ids"),
    "challenger_comparison": (
        False,
        "@champion vs @challenger on the same rides (RMSE of each, share differing by more than 5 min); a warning"
        " when the challenger is worse. The challenger's predictions go to the shadow store, never published",
    ),
}
# The model that scores month M is an input of trip_predictions[M]: its own model, or the observed @champion.
SCORING_MODEL_DEP = duration_model if SCORING_POLICY == PARTITION_POLICY else champion_model


class ScoringConfig(dg.Config):
    model: str = Field(
        SCORING_POLICY,
        description=(
            "which registered model scores the month: 'partition' = duration_model of the same month (never"
            " trained on it), 'champion' = the registry's @champion, or an explicit version number"
        ),
    )


def resolve_model_version(registry: ModelRegistry, policy: str, partition_key: str) -> str:
    if policy == PARTITION_POLICY:
        version = registry.version_for_partition(partition_key)
        if version is None:
            raise partition_failure(
                "trip_predictions", partition_key, "no registered model for this month: materialize duration_model first"
            )
        return version
    if policy == CHAMPION_POLICY:
        version = registry.champion_version()
        if version is None:
            raise partition_failure(
                "trip_predictions", partition_key, f"the registry has no @{registry.champion_alias} model"
            )
        return version
    if policy.isdigit():
        return policy
    raise partition_failure("trip_predictions", partition_key, f"unknown model policy {policy!r}")


def shadow_score(
    registry: ModelRegistry,
    shadow: PredictionStore,
    key: str,
    clean,
    version: str,
    scored,
    problems: dict,
    numbers: dict,
) -> None:
    """With an @challenger, score the month with it too (shadow output) and compare it with @champion."""
    challenger = registry.challenger_version()
    champion = registry.champion_version()
    if challenger is None or champion is None:
        numbers.setdefault("challenger_comparison", {})[key] = {"challenger": "none"}
        return
    comparison, shadow_table = compare_models(
        clean,
        registry.load(champion),
        registry.load(challenger),
        champion,
        challenger,
        champion_predictions=scored if version == champion else None,
    )
    uri = shadow.write_month(*year_month(key), shadow_table)
    numbers.setdefault("challenger_comparison", {})[key] = {**comparison.metadata(), "shadow_uri": uri}
    if comparison.challenger_rmse > comparison.champion_rmse:
        problems.setdefault("challenger_comparison", {})[key] = (
            f"challenger {challenger} RMSE {comparison.challenger_rmse:.3f} vs champion {champion}"
            f" {comparison.champion_rmse:.3f} on the same {comparison.rides} rides"
        )


@dg.asset(
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[SCORING_MODEL_DEP],
    check_specs=check_specs("trip_predictions", PREDICTION_CHECKS),
    automation_condition=converge(),
    retry_policy=RETRY_POLICY,
    group_name="taxi_trips",
    kinds={"parquet"},
    code_version="2",
)
def trip_predictions(
    context: dg.AssetExecutionContext,
    config: ScoringConfig,
    raw_trips: StoredPartitions,
    registry: ModelRegistry,
    predictions: PredictionStore,
    shadow_predictions: PredictionStore,
    thresholds: QualityThresholds,
):
    """Every kept ride of month M with its predicted duration, in `.../year=YYYY/month=MM/predictions.parquet`,
    each row stamped with the model version that scored it. Every month of the run is scored and audited before
    any is published."""
    versions, staged, problems, numbers = {}, set(), {}, {}
    for key in context.partition_keys:
        with failures_named("trip_predictions", key):
            versions[key] = resolve_model_version(registry, config.model, key)
    try:
        for key, version in versions.items():
            with failures_named("trip_predictions", key):
                clean = raw_trips[key]
                scored = score_trips(clean, registry.load(version), version)
                predictions.write_staging(*year_month(key), scored)
                staged.add(key)
            with failures_named("trip_predictions", key):
                shadow_score(registry, shadow_predictions, key, clean, version, scored, problems, numbers)
            numbers.setdefault("trip_predictions_complete", {})[key] = {"rows": scored.num_rows}
            problem = predictions_problem(scored, clean.num_rows, thresholds)
            if problem:
                problems.setdefault("trip_predictions_complete", {})[key] = problem
            context.add_asset_metadata(
                {"dagster/row_count": scored.num_rows, "model_version": version, **prediction_summary(scored)},
                partition_key=key,
            )
        results = month_check_results("trip_predictions", PREDICTION_CHECKS, problems, numbers)
        failed = blocking_failure(PREDICTION_CHECKS, problems)
        if failed:
            yield from results
            check, month, problem = failed
            raise partition_failure("trip_predictions", month, f"check {check} failed, nothing published: {problem}")
        for key in versions:
            with failures_named("trip_predictions", key):
                uri = predictions.publish(*year_month(key))
                staged.discard(key)
            context.log.info(f"trip_predictions[{key}]: scored by model version {versions[key]}, published {uri}")
            context.add_asset_metadata({"dagster/uri": uri}, partition_key=key)
    finally:
        for key in staged:
            predictions.discard_staging(*year_month(key))
    yield dg.MaterializeResult(check_results=results)


@dg.asset(
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[trip_predictions],
    automation_condition=converge(),
    retry_policy=RETRY_POLICY,
    # An embedded DuckDB file takes one writer at a time: runs queue for this pool (limit in dagster.yaml).
    pool="predictions_db",
    group_name="taxi_trips",
    kinds={"duckdb"},
    code_version="1",
)
def prediction_table(
    context: dg.AssetExecutionContext, predictions: PredictionStore, warehouse: PredictionWarehouse
) -> None:
    """The month's published predictions in the SQL table `trip_predictions`, replaced in one transaction."""
    for key in context.partition_keys:
        with failures_named("prediction_table", key):
            rows = warehouse.replace_month(month_start(key), predictions.read_month(*year_month(key)))
        context.add_asset_metadata(
            {"dagster/row_count": rows, "table": "trip_predictions", "database": warehouse.display_url},
            partition_key=key,
        )
