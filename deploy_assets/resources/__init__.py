"""The code location's resources, built from its settings in one place (`build_resources`): connections every
deployment shares (the IO manager's root, the MLflow registry, the SQL database, the notifier, the thresholds).
What is a deployment's own (its model, table, landing service and prediction objects) is `assets.monthly.Deployment`.

`Settings.data_uri` is the one switch that moves every data location (landing, stored assets, predictions, MLflow
artifacts) from the repo's `.data/` folder to another folder or an `s3://bucket/prefix`. Alert channels are passed
as `EnvVar`s: resolved when a run or sensor starts, never stored in the definitions.
"""

from __future__ import annotations

import dagster as dg

from deploy_assets.resources.mlflow_registry import ModelRegistry
from deploy_assets.resources.notifier import Notifier
from deploy_assets.resources.quality import QualityThresholds
from deploy_assets.resources.io_manager import ParquetIOManager
from deploy_assets.resources.landing import LandingZone
from deploy_assets.resources.predictions_store import PredictionStore
from deploy_assets.resources.warehouse import PredictionWarehouse
from deploy_assets.settings import Settings


def _at_launch(settings: Settings, name: str) -> dg.EnvVar | None:
    variable = settings.launch_variable(name)
    return dg.EnvVar(variable) if variable else None


def build_resources(settings: Settings) -> dict:
    endpoint = settings.aws_endpoint_url
    return {
        "parquet_io_manager": ParquetIOManager(uri=settings.location("warehouse"), s3_endpoint_url=endpoint),
        "registry": ModelRegistry(tracking_uri=settings.mlflow_tracking_uri, artifact_location=settings.artifact_location),
        "notifier": Notifier(
            webhook_url=_at_launch(settings, "alert_webhook_url"),
            sns_topic_arn=_at_launch(settings, "alert_sns_topic_arn"),
            endpoint_url=endpoint,
            deployment=_at_launch(settings, "deployment"),
            dagster_url=_at_launch(settings, "dagster_url"),
        ),
        "thresholds": QualityThresholds(),
        "warehouse": PredictionWarehouse(url=settings.predictions_db),
    }


__all__ = [
    "LandingZone",
    "ModelRegistry",
    "Notifier",
    "ParquetIOManager",
    "PredictionStore",
    "PredictionWarehouse",
    "QualityThresholds",
    "build_resources",
]
