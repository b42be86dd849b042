"""duration_model and model_promotion: a model per month, trained only on the months before it, registered once.

duration_model[M] trains on trip_statistics of the k months before M and is tested on raw_trips[M], the month it
will score (an out-of-time test on rides it never saw). It is registered at most once per (month, training data):
a retried or repeated run looks the version up before registering. Promotion to @champion is its own step,
model_promotion[M], never a side effect of training.
"""


from collections.abc import Mapping
from typing import Any

import dagster as dg
from pydantic import Field, create_model

from deploy_assets.assets.checks import check_specs, month_check_evaluations, rounded
from deploy_assets.assets.errors import failures_named
from deploy_assets.assets.history import latest_metadata
from deploy_assets.assets.monthly import Deployment
from deploy_assets.assets.versions import month_data_version
from deploy_assets.automation import converge, converge_with_every_input
from deploy_assets.core.objects import batch_source
from deploy_assets.core.promotion import PromotionMargins
from deploy_assets.core.training import BUILTIN
from deploy_assets.resources.io_manager import PartitionedParquetIOManager, StoredPartitions
from deploy_assets.resources.mlflow_registry import ModelRegistry
from deploy_assets.steps.findings import Findings
from deploy_assets.steps.promote import promote_if_better
from deploy_assets.steps.train import MODEL_CHECKS, MODEL_CODE_VERSION, train_month

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
        findings, versions = Findings(), {}
        model, columns = deployment.model(registry), deployment.clean_schema.names
        spec = config.model_dump(exclude_none=True)
        for key in context.partition_keys:
            with failures_named(model_asset, key):
                training_keys = months.training_keys(key)
                trained = train_month(
                    spec, key, training_keys,
                    [training_months[p] for p in training_keys],
                    [batch_source(parquet_io_manager.partition_path(deployment.label("raw_trips"), p)) for p in training_keys],
                    scored_month.batches(key), columns, model,
                )
            context.log.info(
                f"{model_asset}[{key}]: version {trained.version} {trained.action} (training data"
                f" {trained.metadata['training_data_version']}, RMSE on {key} {trained.metadata['test_rmse']:.3f})"
            )
            context.add_asset_metadata(rounded(trained.metadata), partition_key=key)
            findings.update(trained.findings)
            versions[key] = trained.version
        # The registered version is what the month's model holds: the same training data finds the same version.
        yield dg.MaterializeResult(data_version=month_data_version(context, versions))
        yield from month_check_evaluations(context, context.asset_key, MODEL_CHECKS, findings)

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
                decided = promote_if_better(
                    model, key, str(trained["model_version"]), trained.get("mean_baseline_rmse"),
                    scored_month.batches(key), deployment.clean_schema.names, margins, by=f"{promotion_asset}[{key}]",
                )
            context.log.info(f"{promotion_asset}[{key}]: {decided.decision.reason}")
            context.add_asset_metadata(rounded(decided.metadata), partition_key=key)

    return [duration_model, model_promotion]
