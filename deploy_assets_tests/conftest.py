"""Fixtures: an isolated project (data folder, MLflow store, Dagster instance) per test, on generated months."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from deploy_assets.core.generate import generate_month, write_month
from deploy_assets.definitions import defs
from deploy_assets.partitions import year_month
from deploy_assets.resources import (
    LandingZone,
    ModelRegistry,
    ParquetIOManager,
    PredictionStore,
    PredictionWarehouse,
    QualityThresholds,
)

SMALL_MONTH_ROWS = 20_000


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory) -> str:
    """One local MLflow store per session: creating its schema costs seconds, models are cheap."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@dataclass
class Project:
    root: Path
    resources: dict
    instance: dg.DagsterInstance

    @property
    def landing(self) -> LandingZone:
        return self.resources["landing"]

    @property
    def predictions(self) -> PredictionStore:
        return self.resources["predictions"]

    @property
    def registry(self) -> ModelRegistry:
        return self.resources["registry"]

    @property
    def warehouse(self) -> PredictionWarehouse:
        return self.resources["warehouse"]

    def land(self, partition_key: str, rows: int = SMALL_MONTH_ROWS, table: pa.Table | None = None, seed: int = 0) -> str:
        """Write a generated (or the given) month into the landing zone under its TLC name."""
        year, month = year_month(partition_key)
        table = table if table is not None else generate_month(year, month, rows, seed=seed)
        return write_month(table, self.landing.uri, year, month)

    def materialize(
        self, assets: list[str], partition_key: str, run_config: dict | None = None, raise_on_error: bool = True
    ) -> dg.ExecuteInProcessResult:
        # raw_trips and trip_statistics are written by one step: selecting either selects both, as in the UI.
        selection = dg.AssetSelection.assets(*assets).required_multi_asset_neighbors()
        return dg.materialize(
            defs.assets,
            selection=selection,
            partition_key=partition_key,
            instance=self.instance,
            resources=self.resources,
            run_config=run_config,
            raise_on_error=raise_on_error,
        )

    def metadata(self, result: dg.ExecuteInProcessResult, asset: str) -> dict:
        [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
        return {k: v.value for k, v in event.materialization.metadata.items()}


@pytest.fixture
def project(tmp_path: Path, mlflow_store: str) -> Project:
    name = f"trip-duration-{uuid.uuid4().hex[:8]}"
    resources = {
        "landing": LandingZone(uri=str(tmp_path / "landing")),
        "parquet_io_manager": ParquetIOManager(uri=str(tmp_path / "warehouse")),
        "predictions": PredictionStore(uri=str(tmp_path / "predictions")),
        "shadow_predictions": PredictionStore(uri=str(tmp_path / "shadow-predictions")),
        "registry": ModelRegistry(
            tracking_uri=mlflow_store,
            artifact_location=str(tmp_path / "mlflow-artifacts"),
            experiment_name=name,
            model_name=name,
        ),
        "warehouse": PredictionWarehouse(url=f"duckdb:///{tmp_path / 'predictions.duckdb'}"),
        "thresholds": QualityThresholds(),
    }
    with dg.instance_for_test() as instance:
        yield Project(root=tmp_path, resources=resources, instance=instance)
