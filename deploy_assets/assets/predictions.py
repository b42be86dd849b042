"""trip_predictions and prediction_table: a month scored, published as one Parquet object and as SQL rows."""

import dagster as dg
import pyarrow as pa
from pydantic import Field

from deploy_assets.assets.errors import RETRY_POLICY, failures_named, partition_failure
from deploy_assets.assets.model import duration_model
from deploy_assets.core.scoring import prediction_summary, score_trips
from deploy_assets.partitions import month_start, monthly_partitions, year_month
from deploy_assets.resources.mlflow_registry import ModelRegistry
from deploy_assets.resources.storage import PredictionStore, StoredPartitions
from deploy_assets.resources.warehouse import PredictionWarehouse

PARTITION_MODEL = "partition"
CHAMPION_MODEL = "champion"


class ScoringConfig(dg.Config):
    model: str = Field(
        PARTITION_MODEL,
        description=(
            "which registered model scores the month: 'partition' = duration_model of the same month (default;"
            " never trained on it), 'champion' = the registry's @champion, or an explicit version number"
        ),
    )


def resolve_model_version(registry: ModelRegistry, policy: str, partition_key: str) -> str:
    if policy == PARTITION_MODEL:
        version = registry.version_for_partition(partition_key)
        if version is None:
            raise partition_failure(
                "trip_predictions", partition_key, "no registered model for this month: materialize duration_model first"
            )
        return version
    if policy == CHAMPION_MODEL:
        version = registry.champion_version()
        if version is None:
            raise partition_failure(
                "trip_predictions", partition_key, f"the registry has no @{registry.champion_alias} model"
            )
        return version
    if policy.isdigit():
        return policy
    raise partition_failure("trip_predictions", partition_key, f"unknown model policy {policy!r}")


def score_month(
    context: dg.AssetExecutionContext,
    raw_trips: StoredPartitions,
    registry: ModelRegistry,
    predictions: PredictionStore,
    key: str,
    version: str,
) -> None:
    year, month = year_month(key)
    scored = score_trips(raw_trips[key], registry.load(version), version)
    uri = predictions.write_month(year, month, scored)
    context.log.info(f"trip_predictions[{key}]: {scored.num_rows} rides scored by model version {version} → {uri}")
    context.add_asset_metadata(
        {
            "dagster/uri": uri,
            "dagster/row_count": scored.num_rows,
            "model_version": version,
            **prediction_summary(scored),
        },
        partition_key=key,
    )


@dg.asset(
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[duration_model],
    retry_policy=RETRY_POLICY,
    group_name="taxi_trips",
    kinds={"parquet"},
    code_version="1",
)
def trip_predictions(
    context: dg.AssetExecutionContext,
    config: ScoringConfig,
    raw_trips: StoredPartitions,
    registry: ModelRegistry,
    predictions: PredictionStore,
) -> None:
    """Every kept ride of month M with its predicted duration, in `.../year=YYYY/month=MM/predictions.parquet`.

    The object is replaced atomically on re-run, and each row carries the model version that scored it. Over
    a range of months, every month's model is resolved before any object is written.
    """
    versions = {}
    for key in context.partition_keys:
        with failures_named("trip_predictions", key):
            versions[key] = resolve_model_version(registry, config.model, key)
    for key, version in versions.items():
        with failures_named("trip_predictions", key):
            score_month(context, raw_trips, registry, predictions, key, version)


@dg.asset(
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[trip_predictions],
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
    """The month's predictions in the SQL table `trip_predictions`, replaced in one transaction per month."""
    for key in context.partition_keys:
        with failures_named("prediction_table", key):
            rows = warehouse.replace_month(month_start(key), predictions.read_month(*year_month(key)))
        context.add_asset_metadata(
            {"dagster/row_count": rows, "table": "trip_predictions", "database": warehouse.display_url},
            partition_key=key,
        )
