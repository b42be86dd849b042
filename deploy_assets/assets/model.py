"""duration_model and model_promotion: a model per month, trained only on the months before it, registered once.

duration_model[M] trains on trip_statistics of the k months before M and is tested on raw_trips[M], the month it
will score (an out-of-time test on rides it never saw). It is registered at most once per (month, training data):
a retried or repeated run looks the version up before registering. Promotion to @champion is its own step,
model_promotion[M], never a side effect of training.
"""


import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg
import numpy as np
import pyarrow as pa
from pydantic import Field, create_model

from deploy_assets.assets.checks import check_specs, finite, month_check_evaluations, rounded
from deploy_assets.assets.errors import failures_named, partition_failure
from deploy_assets.assets.history import latest_metadata
from deploy_assets.assets.monthly import Deployment
from deploy_assets.assets.versions import month_data_version
from deploy_assets.automation import converge, converge_with_every_input
from deploy_assets.core.batches import BatchSource, table_digest
from deploy_assets.core.contract import as_deployable
from deploy_assets.core.drift import DISTANCE_BIN_COUNT, SIGNIFICANT_PSI, distance_bin_counts, psi
from deploy_assets.core.datasets import DISTANCE
from deploy_assets.core.features import FEATURE_COLUMNS, MAX_ZONE_ID, zone_index
from deploy_assets.core.model import (
    SquaredErrors,
    TrainedModel,
    ZonePairDurationRegressor,
    ZonePairStatistics,
    evaluation_columns,
)
from deploy_assets.core.promotion import PromotionMargins, decide_promotion
from deploy_assets.core.training import BUILTIN, train_model
from deploy_assets.core.registry import RegistryClient
from deploy_assets.resources.mlflow_registry import ModelRegistry
from deploy_assets.resources.io_manager import PartitionedParquetIOManager, StoredPartitions
from deploy_assets.resources.objects import batch_source

MODEL_CODE_VERSION = "3"
MODEL_CHECKS = {
    "duration_model_quality": (False, "RMSE on the month it scores is finite and beats predicting the mean"),
    "duration_model_drift": (
        False,
        "pickup/dropoff zones and trip distance of the month it scores vs its training months, as PSI (a warning)",
    ),
}


class TrainingConfig(dg.Config):
    estimator: str = Field(
        BUILTIN,
        description=(
            "'builtin' (the zone-pair model, exact and fast) or the dotted path of any scikit-learn estimator or"
            " pipeline factory, e.g. 'sklearn.ensemble.RandomForestRegressor'"
        ),
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="its parameters, e.g. {'smoothing': 5.0, 'robust': True} for the built-in model",
    )
    features: list[str] | None = Field(
        None, description="the ride features a scikit-learn estimator is fitted on; unset, core.training's defaults"
    )

    @classmethod
    def declared(cls, spec: Mapping[str, Any] | None) -> type["TrainingConfig"]:
        """This config with a deployment's declared training spec (its `training:`) as the defaults, so the
        launchpad shows them and a run's config still overrides them."""
        if not spec:
            return cls
        fields = {
            name: (info.annotation, Field(spec[name], description=info.description))
            for name, info in cls.model_fields.items() if name in spec
        }
        return create_model(cls.__name__, __base__=cls, **fields)


def training_data_version(partition_keys: list[str], training: list[pa.Table], config: TrainingConfig) -> str:
    """What the model learns from: the statistics of every training month (a function of its rows, recorded
    when it was ingested) and the training parameters. Equal inputs give an equal version, so a repeated or
    retried run finds the model it registered before; a month re-ingested from other bytes gives another.

    Content, not Dagster's data version of trip_statistics: Dagster derives that from the data versions of its
    inputs' materializations only (not from observations), so it would not follow landing_file's ETag.
    """
    parts = [f"code={MODEL_CODE_VERSION}", f"config={config.model_dump_json(exclude_none=True)}"]
    parts += [f"{key}={table_digest(table)}" for key, table in zip(partition_keys, training, strict=True)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


@dataclass
class MonthTest:
    """A model's errors on the month it will score, read by batches, and that month's zone and trip-distance
    counts (for drift)."""

    errors: SquaredErrors
    baseline: SquaredErrors
    pickup_zones: np.ndarray
    dropoff_zones: np.ndarray
    distance_bins: np.ndarray


def test_on_month(model, month: BatchSource, columns: list[str], mean_duration: float) -> MonthTest:
    """The model's errors on a stored month with these columns (the deployment's cleaned schema)."""
    deployable = as_deployable(model)
    test = MonthTest(
        SquaredErrors(),
        SquaredErrors(),
        np.zeros(MAX_ZONE_ID + 1),
        np.zeros(MAX_ZONE_ID + 1),
        np.zeros(DISTANCE_BIN_COUNT),
    )
    for batch in month(columns):
        actual = batch["duration"].to_numpy()
        test.errors.add(actual, deployable.predict_rides(batch))
        test.baseline.add(actual, np.full(len(actual), mean_duration))
        test.pickup_zones += np.bincount(zone_index(batch["PULocationID"].to_numpy()), minlength=MAX_ZONE_ID + 1)
        test.dropoff_zones += np.bincount(zone_index(batch["DOLocationID"].to_numpy()), minlength=MAX_ZONE_ID + 1)
        if DISTANCE in columns:
            test.distance_bins += distance_bin_counts(batch[DISTANCE].to_numpy())
    return test


def fit(config: TrainingConfig, statistics: ZonePairStatistics, months: list[BatchSource], columns: list[str]):
    """The built-in model from the months' statistics (exact; its robust fit reads the rides once more, by
    batches); any other estimator on the months' rows. `columns`: the cleaned months' (the dataset's features)."""
    if config.estimator == BUILTIN:
        features = [name for name in columns if name in FEATURE_COLUMNS]

        def rides():
            return (batch for month in months for batch in month(evaluation_columns(features)))

        return ZonePairDurationRegressor.from_statistics(
            statistics, rides, **config.params, uses_distance=DISTANCE in features
        )
    return train_model(months, holdout_fraction=0.0, config=config.model_dump(exclude_none=True), columns=columns).model


def train_month(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    training_months: StoredPartitions,
    scored_month: StoredPartitions,
    registry: RegistryClient,
    warehouse: PartitionedParquetIOManager,
    deployment: Deployment,
    key: str,
    problems: dict,
    numbers: dict,
    versions: dict,
) -> None:
    training_partitions = deployment.months.training_keys(key)
    if not training_partitions:
        raise partition_failure(
            deployment.label("duration_model"), key, "no earlier month to train on: it is the first partition of the range"
        )
    stored = [training_months[p] for p in training_partitions]
    statistics = sum((ZonePairStatistics.from_stored(table) for table in stored), ZonePairStatistics.empty())
    data_version = training_data_version(training_partitions, stored, config)
    raw_trips = deployment.label("raw_trips")
    columns = deployment.clean_schema.names
    model = fit(config, statistics, [batch_source(warehouse.partition_path(raw_trips, p)) for p in training_partitions], columns)
    rides_bounded = getattr(model, "rides_bounded_", None)
    mean_duration = float(statistics.count @ statistics.mean_duration / max(statistics.rides, 1))
    test = test_on_month(model, scored_month.batches(key), columns, mean_duration)
    test_rmse = test.errors.rmse
    version = registry.find_version(key, data_version)
    if version is None:
        # Fitted from the months' statistics: no hold-out; what it is judged on is the month it will score.
        trained = TrainedModel(
            model=model,
            holdout=None,
            train_rows=statistics.rides,
            holdout_rows=0,
            holdout_rmse=float("nan"),
            train_rmse=float("nan"),
            rides_bounded=rides_bounded,
        )
        registered = registry.log_and_register(
            trained,
            partition_key=key,
            training_partitions=training_partitions,
            params={"estimator": config.estimator, **config.params, "test_month": key},
            training_data_version=data_version,
            metrics={"test_rmse": test_rmse, "test_rows": test.errors.rows, "mean_baseline_rmse": test.baseline.rmse},
        )
        version, run_id, action = registered.version, registered.run_id, "registered"
    else:
        run_id, action = registry.version_run_id(version), "already registered"
    context.log.info(
        f"{deployment.label('duration_model')}[{key}]: version {version} {action} (training data {data_version}, RMSE on {key}"
        f" {test_rmse:.3f})"
    )
    mean_rmse = test.baseline.rmse
    numbers.setdefault("duration_model_quality", {})[key] = {"test_rmse": test_rmse, "mean_baseline_rmse": mean_rmse}
    if not finite(test_rmse) or test_rmse >= mean_rmse:
        problems.setdefault("duration_model_quality", {})[key] = (
            f"RMSE {test_rmse:.3f} on {key} does not beat predicting the mean ({mean_rmse:.3f})"
        )
    pickup, dropoff = statistics.zone_counts()
    drift = {
        "psi_PULocationID": psi(pickup, test.pickup_zones),
        "psi_DOLocationID": psi(dropoff, test.dropoff_zones),
        # None (not a failure) when a training month was stored before its distance counts were recorded.
        "psi_trip_distance": (
            psi(statistics.distance_counts, test.distance_bins) if statistics.distance_counts is not None else None
        ),
    }
    present = {name: value for name, value in drift.items() if value is not None}
    numbers.setdefault("duration_model_drift", {})[key] = {**drift, "drift_score": max(present.values())}
    shifted = {name: round(value, 3) for name, value in present.items() if value > SIGNIFICANT_PSI}
    if shifted:
        problems.setdefault("duration_model_drift", {})[key] = f"shift vs {training_partitions[-1]}: {shifted}"
    versions[key] = version
    context.add_asset_metadata(
        rounded({
            "model_version": version,
            "mlflow_run_id": run_id,
            "model_uri": f"models:/{registry.model_name}/{version}",
            "test_rmse": test_rmse,
            "mean_baseline_rmse": test.baseline.rmse,
            "train_rows": statistics.rides,
            "rides_bounded": rides_bounded,
            "test_rows": test.errors.rows,
            "training_partitions": ",".join(training_partitions),
            "training_data_version": data_version,
        }),
        partition_key=key,
    )


def rmse_on(model, month: BatchSource, columns: list[str]) -> float:
    """RMSE of any deployable model on a stored month with these columns, read by batches."""
    deployable, errors = as_deployable(model), SquaredErrors()
    for batch in month(columns):
        errors.add(batch["duration"].to_numpy(), deployable.predict_rides(batch))
    return errors.rmse


class PromotionConfig(dg.Config):
    margin: float = Field(
        PromotionMargins.over_champion, description="promote if RMSE ≤ champion's RMSE on the same rides × (1 + margin)"
    )
    baseline_margin: float = Field(
        PromotionMargins.over_baseline, description="and RMSE ≤ the mean baseline's RMSE × (1 − baseline_margin)"
    )


def build_model_assets(deployment: Deployment) -> list[dg.AssetsDefinition]:
    """The deployment's duration_model and model_promotion."""
    months = deployment.months
    model_asset, promotion_asset = deployment.label("duration_model"), deployment.label("model_promotion")
    training_config = TrainingConfig.declared(deployment.settings.training)

    @dg.asset(
        **deployment.monthly(),
        ins={
            "training_months": dg.AssetIn(
                deployment.key("trip_statistics"),
                partition_mapping=months.training_mapping,
            ),
            "scored_month": dg.AssetIn(deployment.key("raw_trips")),
        },
        check_specs=check_specs(deployment.key("duration_model"), MODEL_CHECKS, months.partitions_def),
        automation_condition=converge_with_every_input(dg.AssetSelection.assets(deployment.key("trip_statistics"))),
        kinds={"mlflow", "scikitlearn"},
        code_version=MODEL_CODE_VERSION,
    )
    def duration_model(
        context: dg.AssetExecutionContext,
        config: training_config,
        training_months: StoredPartitions,
        scored_month: StoredPartitions,
        registry: ModelRegistry,
        parquet_io_manager: dg.ResourceParam[PartitionedParquetIOManager],
    ):
        """Trip-duration model for month M, fitted on the months before M (never on M), tested on M.

        Logged to MLflow with params, metrics and signature and registered once, tagged with the partition and its
        training data. The first month has no model (nothing before it to train on) and automation never requests
        it; under the champion scoring policy its predictions come from @champion once one exists.
        """
        problems, numbers, versions = {}, {}, {}
        model = deployment.model(registry)
        for key in context.partition_keys:
            with failures_named(model_asset, key):
                train_month(
                    context, config, training_months, scored_month, model, parquet_io_manager, deployment, key,
                    problems, numbers, versions,
                )
        # The registered version is what the month's model holds: the same training data finds the same version.
        yield dg.MaterializeResult(data_version=month_data_version(context, versions))
        yield from month_check_evaluations(context, context.asset_key, MODEL_CHECKS, problems, numbers)

    @dg.asset(
        **deployment.monthly(),
        deps=[duration_model],
        ins={"scored_month": dg.AssetIn(deployment.key("raw_trips"))},
        automation_condition=converge(),
        kinds={"mlflow"},
        code_version="2",
    )
    def model_promotion(
        context: dg.AssetExecutionContext,
        config: PromotionConfig,
        scored_month: StoredPartitions,
        registry: ModelRegistry,
    ) -> None:
        """Moves @champion to duration_model[M] when `core.promotion.decide_promotion` says so: it beats the mean
        baseline on the rides of M by a margin, is not much worse than the champion on the same rides, and is not older
        than the champion's month (promotion never moves backwards in time; a roll-back is a deliberate
        `deploy-assets-promote --allow-backwards`). The metadata states the rule, the margins and both models' RMSE."""
        margins = PromotionMargins(over_baseline=config.baseline_margin, over_champion=config.margin)
        model = deployment.model(registry)
        for key in sorted(context.partition_keys):
            with failures_named(promotion_asset, key):
                trained = latest_metadata(context.instance, duration_model.key, key)
                candidate = str(trained["model_version"])
                champion = model.champion_version()
                rides, columns = scored_month.batches(key), deployment.clean_schema.names
                # Validated first: a model reading a column the deployment's rides lack is refused by name.
                candidate_rmse = rmse_on(model.load_deployable(candidate), rides, columns)
                champion_rmse = rmse_on(model.load(champion), rides, columns) if champion else None
                champion_month = model.version_tags(champion).get("partition") if champion else None
                # The month's mean baseline, as duration_model measured it on the same rides.
                baseline_rmse = trained.get("mean_baseline_rmse")
                if baseline_rmse is None:
                    raise partition_failure(
                        promotion_asset, key, "duration_model was materialized before it recorded its mean baseline:"
                        " materialize it again"
                    )
                decision = decide_promotion(
                    candidate,
                    candidate_rmse,
                    baseline_rmse,
                    champion,
                    champion_rmse,
                    key,
                    champion_month,
                    margins,
                )
                if decision.promote:
                    model.promote(candidate, by=f"{promotion_asset}[{key}]", reason=decision.reason)
                context.log.info(f"{promotion_asset}[{key}]: {decision.reason}")
                context.add_asset_metadata(
                    rounded({
                        "candidate_version": candidate,
                        "candidate_rmse": candidate_rmse,
                        # The champion it was judged against (before any promotion) and that model's RMSE.
                        "champion_version": champion,
                        "champion_rmse": champion_rmse,
                        "mean_baseline_rmse": baseline_rmse,
                        "champion_margin": margins.over_champion,
                        "baseline_margin": margins.over_baseline,
                        "champion_after": model.champion_version(),
                        "promoted": decision.promote,
                        "decision": decision.reason,
                        "rule": decision.rule,
                    }),
                    partition_key=key,
                )

    return [duration_model, model_promotion]
