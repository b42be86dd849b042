"""trip_predictions and prediction_table: a month scored, published as one Parquet object and as SQL rows."""

import dagster as dg
import pyarrow as pa
from pydantic import Field

from deploy_assets.assets.errors import partition_failure
from deploy_assets.assets.model import duration_model
from deploy_assets.core.scoring import prediction_summary, score_trips
from deploy_assets.partitions import month_start, monthly_partitions, year_month
from deploy_assets.resources.mlflow_registry import ModelRegistry
from deploy_assets.resources.storage import PredictionStore
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


@dg.asset(
    partitions_def=monthly_partitions,
    deps=[duration_model],
    group_name="taxi_trips",
    kinds={"parquet"},
    code_version="1",
)
def trip_predictions(
    context: dg.AssetExecutionContext,
    config: ScoringConfig,
    raw_trips: pa.Table,
    registry: ModelRegistry,
    predictions: PredictionStore,
) -> dg.MaterializeResult:
    """Every kept ride of month M with its predicted duration, in `.../year=YYYY/month=MM/predictions.parquet`.

    The object is replaced atomically on re-run, and each row carries the model version that scored it.
    """
    key = context.partition_key
    year, month = year_month(key)
    version = resolve_model_version(registry, config.model, key)
    model = registry.load(version)
    scored = score_trips(raw_trips, model, version)
    uri = predictions.write_month(year, month, scored)
    summary = prediction_summary(scored)
    context.log.info(f"trip_predictions[{key}]: {scored.num_rows} rides scored by model version {version} → {uri}")
    return dg.MaterializeResult(
        metadata={
            "dagster/uri": uri,
            "dagster/row_count": scored.num_rows,
            "model_version": version,
            "model_policy": config.model,
            **summary,
        }
    )


@dg.asset(
    partitions_def=monthly_partitions,
    deps=[trip_predictions],
    group_name="taxi_trips",
    kinds={"duckdb"},
    code_version="1",
)
def prediction_table(
    context: dg.AssetExecutionContext, predictions: PredictionStore, warehouse: PredictionWarehouse
) -> dg.MaterializeResult:
    """The month's predictions in the SQL table `trip_predictions`, replaced in one transaction."""
    key = context.partition_key
    year, month = year_month(key)
    scored = predictions.read_month(year, month)
    rows = warehouse.replace_month(month_start(key), scored)
    return dg.MaterializeResult(metadata={"dagster/row_count": rows, "table": "trip_predictions", "database": warehouse.url})
