"""duration_model: a model per month, trained only on the months before it, tracked and registered in MLflow."""

import math

import dagster as dg
from pydantic import Field

from deploy_assets.assets.errors import RETRY_POLICY, failures_named, partition_failure
from deploy_assets.assets.raw import raw_trips
from deploy_assets.core.model import evaluate, train_duration_model
from deploy_assets.partitions import TRAINING_WINDOW_MONTHS, monthly_partitions, training_partition_keys
from deploy_assets.resources.mlflow_registry import ModelRegistry
from deploy_assets.resources.storage import StoredPartitions


class TrainingConfig(dg.Config):
    holdout_fraction: float = Field(0.2, description="share of the latest month's rides held out for RMSE")
    smoothing: float = Field(5.0, description="pseudo-count shrinking rare zone pairs to the overall mean")
    promotion_margin: float = Field(
        0.05, description="become @champion if hold-out RMSE ≤ champion's RMSE on the same rides × (1 + margin)"
    )


def train_month(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    earlier_months: StoredPartitions,
    registry: ModelRegistry,
    key: str,
) -> None:
    training_partitions = training_partition_keys(key)
    if not training_partitions:
        raise partition_failure(
            "duration_model", key, "no earlier month to train on: it is the first partition of the range"
        )
    trained = train_duration_model(
        [earlier_months[p] for p in training_partitions],
        holdout_fraction=config.holdout_fraction,
        smoothing=config.smoothing,
    )
    registered = registry.log_and_register(
        trained,
        partition_key=key,
        training_partitions=training_partitions,
        params={"smoothing": config.smoothing, "holdout_fraction": config.holdout_fraction},
    )

    champion = registry.champion_version()
    champion_rmse = evaluate(registry.load(champion), trained.holdout) if champion else float("nan")
    promoted = champion is None or not (trained.holdout_rmse > champion_rmse * (1 + config.promotion_margin))
    if promoted:
        registry.promote(registered.version)
    context.log.info(
        f"duration_model[{key}] registered as version {registered.version}"
        f" (hold-out RMSE {trained.holdout_rmse:.3f}); champion: {registered.version if promoted else champion}"
    )
    context.add_asset_metadata(
        {
            "model_version": registered.version,
            "mlflow_run_id": registered.run_id,
            "model_uri": registered.model_uri,
            "holdout_rmse": trained.holdout_rmse,
            "train_rmse": trained.train_rmse,
            "train_rows": trained.train_rows,
            "holdout_rows": trained.holdout_rows,
            "training_partitions": ",".join(training_partitions),
            "promoted_to_champion": promoted,
            "champion_rmse_on_holdout": None if math.isnan(champion_rmse) else champion_rmse,
        },
        partition_key=key,
    )


@dg.asset(
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    ins={
        "earlier_months": dg.AssetIn(
            raw_trips.key,
            partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-TRAINING_WINDOW_MONTHS, end_offset=-1),
        )
    },
    retry_policy=RETRY_POLICY,
    group_name="taxi_trips",
    kinds={"mlflow", "scikitlearn"},
    code_version="1",
)
def duration_model(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    earlier_months: StoredPartitions,
    registry: ModelRegistry,
) -> None:
    """Trip-duration model for month M, fitted on raw_trips of the months before M (never on M).

    Logged to MLflow with params, metrics and signature, registered as a new version tagged with the partition;
    it becomes @champion when there is none or it is no worse than the champion on this model's hold-out.
    Over a range of months (a backfill), each month gets its own model, in month order.
    """
    for key in context.partition_keys:
        with failures_named("duration_model", key):
            train_month(context, config, earlier_months, registry, key)
