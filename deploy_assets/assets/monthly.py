"""What every asset, check and sensor of one deployment closes over: `Deployment`, its settings seen from Dagster.

The code location's resources are connections shared by every deployment (the MLflow registry, the SQL database,
the IO manager's root, the notifier); what is a deployment's own (its key prefix and group, its months, its
registered model, its predictions objects and table, its TLC service in the landing zone) comes from here, so
two deployments never share an asset, a model, an object key or a table row.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import dagster as dg
import pyarrow as pa

from deploy_assets.assets.errors import RETRY_POLICY
from deploy_assets.assets.versions import ONE_MONTH_PER_RUN
from deploy_assets.core.datasets import Dataset
from deploy_assets.core.features import RideRules, clean_schema
from deploy_assets.core.registry import RegistryClient
from deploy_assets.partitions import Months
from deploy_assets.resources.landing import LandingZone
from deploy_assets.resources.mlflow_registry import ModelRegistry
from deploy_assets.resources.predictions_store import PredictionStore
from deploy_assets.resources.quality import QualityThresholds
from deploy_assets.resources.warehouse import PredictionWarehouse
from deploy_assets.settings import Settings, ride_rules


@dataclass(frozen=True)
class Deployment:
    settings: Settings

    @property
    def name(self) -> str:
        return self.settings.name

    @cached_property
    def months(self) -> Months:
        return Months.of(self.settings)

    def key(self, asset: str) -> dg.AssetKey:
        """The deployment's asset `asset`: `<name>/<asset>`."""
        return dg.AssetKey([self.name, asset])

    def label(self, asset: str) -> str:
        """How messages name the asset (`yellow/raw_trips`), as the UI does."""
        return self.key(asset).to_user_string()

    def named(self, what: str) -> str:
        """A job's, sensor's or pool's name, unique in the code location: `<name>_<what>`."""
        return f"{self.name}_{what}"

    def observed(self) -> dict[str, Any]:
        """The decorator arguments of every asset of the deployment: its key prefix, group and months."""
        return {"key_prefix": [self.name], "partitions_def": self.months.partitions_def, "group_name": self.name}

    def monthly(self) -> dict[str, Any]:
        """The decorator arguments of the deployment's materialized assets: `observed()`, one month per run, and
        its retries."""
        return {**self.observed(), "backfill_policy": ONE_MONTH_PER_RUN, "retry_policy": RETRY_POLICY}

    @cached_property
    def landing(self) -> LandingZone:
        settings = self.settings
        declared = None if isinstance(settings.dataset, str) else dict(settings.dataset)
        return LandingZone(
            uri=settings.location("landing"), s3_endpoint_url=settings.aws_endpoint_url,
            dataset=settings.dataset if declared is None else settings.name, declared_dataset=declared,
        )

    @property
    def dataset(self) -> Dataset:
        return self.landing.tlc_dataset

    @cached_property
    def rules(self) -> RideRules:
        """The valid-ride rules its months are cleaned by (a ride with a null zone kept, if it says so)."""
        return ride_rules(self.settings.missing_zones)

    @cached_property
    def clean_schema(self) -> pa.Schema:
        """Its cleaned months' columns: the ride features of its dataset (no trip_distance on FHV)."""
        return clean_schema(self.dataset.features)

    @cached_property
    def predictions(self) -> PredictionStore:
        return PredictionStore(uri=self.settings.location("predictions"), s3_endpoint_url=self.settings.aws_endpoint_url)

    @cached_property
    def shadow_predictions(self) -> PredictionStore:
        """The challenger's predictions: scored beside every published month, never published nor loaded."""
        return PredictionStore(
            uri=self.settings.location("shadow_predictions"), s3_endpoint_url=self.settings.aws_endpoint_url
        )

    def model(self, registry: ModelRegistry) -> RegistryClient:
        """The deployment's registered model in the shared registry, whose versions must read only what the
        deployment's rides have."""
        return registry.client(self.settings.registered_model, self.name, self.dataset.model_columns)

    def limits(self, thresholds: QualityThresholds) -> QualityThresholds:
        """The code location's check thresholds, with the ones the deployment declares (its `thresholds:`)."""
        declared = self.settings.thresholds
        return QualityThresholds(**{**thresholds.model_dump(), **declared}) if declared else thresholds

    def table(self, warehouse: PredictionWarehouse) -> PredictionWarehouse:
        """The deployment's predictions table in the shared database."""
        return warehouse.with_table(self.settings.table)
