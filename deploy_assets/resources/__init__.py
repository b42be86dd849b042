"""Resources, configured from the environment in one place (`build_resources`).

Standard variables first (`AWS_ENDPOINT_URL`, `MLFLOW_TRACKING_URI`); project variables only where no standard
exists. `DEPLOY_ASSETS_DATA_URI` is the one switch that moves every data location (landing, stored assets,
predictions, MLflow artifacts) from the repo's `.data/` folder to another folder or an `s3://bucket/prefix`.
"""

from __future__ import annotations

import os

import dagster as dg

from deploy_assets.resources.mlflow_registry import ModelRegistry
from deploy_assets.resources.notifier import Notifier
from deploy_assets.resources.quality import QualityThresholds
from deploy_assets.resources.storage import REPO_DATA_DIR, LandingZone, ParquetIOManager, PredictionStore
from deploy_assets.resources.warehouse import DUCKDB_PREFIX, PredictionWarehouse


def data_uri() -> str:
    return os.getenv("DEPLOY_ASSETS_DATA_URI", str(REPO_DATA_DIR)).rstrip("/")


def _location(name: str, override_variable: str) -> str:
    return os.getenv(override_variable) or f"{data_uri()}/{name}"


def _from_env(variable: str) -> dg.EnvVar | None:
    """Resolved when a run or sensor starts (not stored in the definitions), and only when set."""
    return dg.EnvVar(variable) if os.getenv(variable) else None


def build_resources() -> dict:
    endpoint = os.getenv("AWS_ENDPOINT_URL") or None
    tracking_uri = os.getenv("MLFLOW_TRACKING_URI") or f"sqlite:///{REPO_DATA_DIR / 'mlflow' / 'mlflow.db'}"
    # A tracking server owns its artifact root; a local store keeps artifacts beside the data.
    artifacts = os.getenv("DEPLOY_ASSETS_MLFLOW_ARTIFACTS") or (
        None if tracking_uri.startswith("http") else f"{data_uri()}/mlflow-artifacts"
    )
    return {
        "landing": LandingZone(uri=_location("landing", "DEPLOY_ASSETS_LANDING_URI"), s3_endpoint_url=endpoint),
        "parquet_io_manager": ParquetIOManager(
            uri=_location("warehouse", "DEPLOY_ASSETS_WAREHOUSE_URI"), s3_endpoint_url=endpoint
        ),
        "predictions": PredictionStore(
            uri=_location("predictions", "DEPLOY_ASSETS_PREDICTIONS_URI"), s3_endpoint_url=endpoint
        ),
        # The challenger's predictions: scored beside every published month, never published nor loaded.
        "shadow_predictions": PredictionStore(
            uri=_location("shadow-predictions", "DEPLOY_ASSETS_SHADOW_PREDICTIONS_URI"), s3_endpoint_url=endpoint
        ),
        "registry": ModelRegistry(
            tracking_uri=tracking_uri,
            artifact_location=artifacts,
            model_name=os.getenv("DEPLOY_ASSETS_MODEL_NAME", "trip-duration"),
            experiment_name=os.getenv("DEPLOY_ASSETS_MODEL_NAME", "trip-duration"),
        ),
        "notifier": Notifier(
            webhook_url=_from_env("DEPLOY_ASSETS_ALERT_WEBHOOK_URL"),
            sns_topic_arn=_from_env("DEPLOY_ASSETS_ALERT_SNS_TOPIC_ARN"),
            endpoint_url=endpoint,
            deployment=_from_env("DEPLOY_ASSETS_DEPLOYMENT"),
            dagster_url=_from_env("DEPLOY_ASSETS_DAGSTER_URL"),
        ),
        "thresholds": QualityThresholds(),
        "warehouse": PredictionWarehouse(
            url=os.getenv("DEPLOY_ASSETS_PREDICTIONS_DB") or f"{DUCKDB_PREFIX}{REPO_DATA_DIR / 'predictions.duckdb'}"
        ),
    }
