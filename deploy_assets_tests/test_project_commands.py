"""The commands a new user runs: definitions validate from the repo root, and the README's main job."""

from __future__ import annotations

import pytest

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.servers  # starts real processes
def test_definitions_validate_from_the_repo_root(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    result = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


@pytest.mark.servers  # starts real processes
def test_the_dg_cli_loads_the_deployments_declared_in_the_defs_folder(tmp_path):
    """`dg check defs` validates every defs.yaml and loads the definitions; `dg list defs` shows the yellow
    deployment's assets in its own group and the component type the YAML names."""
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}

    def dg_cli(*args: str) -> str:
        result = subprocess.run([str(BIN / "dg"), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    checked = dg_cli("check", "defs")
    assert "All component YAML validated successfully" in checked and "All definitions loaded successfully" in checked
    listed = json.loads(dg_cli("list", "defs", "--json"))
    groups = {asset["asset_key"]: asset["group_name"] for asset in listed["assets"]}
    assert groups == {key: "yellow" for key in (
        "landing_file", "champion_model", "raw_trips", "trip_statistics", "duration_model", "model_promotion",
        "trip_predictions", "prediction_table",
    )}
    components = json.loads(dg_cli("list", "components", "--json"))
    assert "deploy_assets.components.ModelDeployment" in {c["key"] for c in components["items"]}


@pytest.mark.servers  # starts real processes
def test_demo_materializes_a_month_end_to_end(tmp_path):
    env = {
        **os.environ,
        "DEPLOY_ASSETS_DATA_URI": str(tmp_path / "data"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "DEPLOY_ASSETS_PREDICTIONS_DB": f"duckdb:///{tmp_path / 'predictions.duckdb'}",
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    result = subprocess.run(
        [str(BIN / "deploy-assets-demo"), "--rows", "20000"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    objects = list((tmp_path / "data" / "predictions").rglob("*.parquet"))
    assert [p.relative_to(tmp_path / "data" / "predictions").as_posix() for p in objects] == [
        "year=2024/month=02/predictions.parquet"
    ]
    assert pq.read_metadata(objects[0]).num_rows > 15_000
    assert "2024/02_0" in result.stdout

    # One model, for February, trained on January and promoted (the job includes model_promotion).
    from mlflow import MlflowClient

    tracking = env["MLFLOW_TRACKING_URI"]
    [version] = MlflowClient(tracking_uri=tracking, registry_uri=tracking).search_model_versions("name = 'trip-duration'")
    assert version.tags["partition"] == "2024-02-01" and version.tags["training_partitions"] == "2024-01-01"
    assert set(pq.read_table(objects[0], columns=["model_version"])[0].to_pylist()) == {str(version.version)}

    # `scripts/dev.sh` afterwards (the daemon on the same instance) finds nothing to do: the landing sensor's
    # first look reports nothing (the demo recorded what landed), and automation's first evaluation requests
    # nothing (everything the demo scored is up to date; the first month has nothing to train on).
    import dagster as dg

    from deploy_assets.definitions import defs
    from deploy_assets.resources import LandingZone

    landing_sensor = defs.get_sensor_def("landing_sensor")

    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        landing = LandingZone(uri=str(tmp_path / "data" / "landing"))
        reported = landing_sensor(dg.build_sensor_context(instance=instance, resources={"landing": landing}))
        assert reported.asset_events == []
        assert dg.evaluate_automation_conditions(defs=defs, instance=instance).total_requested == 0
